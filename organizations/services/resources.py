"""Writes to the resources the platform's services register in projects (#14)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from iamportal.text import unsafe_characters
from organizations.models import Project, Resource
from organizations.services.organizations import organization_bump_authz_version
from organizations.tags import check_tags
from policies.catalogue import RESOURCE_TYPES
from policies.services.rules import rules_forget_resource

NAME_MAX_LENGTH = Resource._meta.get_field("name").max_length


def _check_type(type: str) -> str:
    if type not in RESOURCE_TYPES:
        known = ", ".join(RESOURCE_TYPES)
        raise ValidationError({"type": f'Unknown resource type "{type}": use one of {known}.'})
    return type


def _check_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationError({"name": "Enter a resource name."})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": f"A resource name is at most {NAME_MAX_LENGTH} characters."})
    unsafe = unsafe_characters(name)
    if unsafe:
        codes = ", ".join(f"U+{ord(char):04X}" for char in unsafe)
        raise ValidationError(
            {"name": f"Use a name on one line without control or invisible characters ({codes})."}
        )
    return name


def _state(resource: Resource) -> dict[str, Any]:
    return {"name": resource.name, "tags": resource.tags}


@transaction.atomic
def resource_create(
    *,
    project: Project,
    type: str,
    name: str,
    tags: dict[str, str],
    actor: User | None,
    request: HttpRequest | None = None,
) -> Resource:
    resource = Resource.objects.create(
        organization=project.organization,
        project=project,
        type=_check_type(type),
        name=_check_name(name),
        tags=check_tags(tags),
    )
    # No bump: no cached decision can be about a resource that did not exist.
    record(
        action=events.RESOURCE_CREATED,
        organization=project.organization,
        actor=actor,
        target=resource,
        data={"after": {"type": resource.type, "project": str(project.pk), **_state(resource)}},
        request=request,
    )
    return resource


@transaction.atomic
def resource_update(
    *,
    resource: Resource,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    actor: User | None,
    request: HttpRequest | None = None,
) -> Resource:
    """Rename the resource and/or replace its tags; absent (None) values are kept."""
    resource = (
        Resource.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=resource.pk)
    )
    before = _state(resource)
    if name is not None:
        resource.name = _check_name(name)
    if tags is not None:
        resource.tags = check_tags(tags)
    after = _state(resource)
    if before == after:
        return resource
    resource.save(update_fields=["name", "tags", "updated_at"])
    record(
        action=events.RESOURCE_UPDATED,
        organization=resource.organization,
        actor=actor,
        target=resource,
        data=diff(before, after),
        request=request,
    )
    # Policy conditions read a resource's tags (and show its name): no cached decision
    # may outlive a retag, so every compiled rule set of the organization is dropped.
    organization_bump_authz_version(organization=resource.organization)
    return resource


@transaction.atomic
def resource_delete(
    *, resource: Resource, actor: User | None, request: HttpRequest | None = None
) -> None:
    """Delete a resource, first taking it out of the rules naming it (audited per
    policy: `policies.services.rules.rules_forget_resource`)."""
    organization = resource.organization
    rules_forget_resource(resource=resource, actor=actor, request=request)
    record(
        action=events.RESOURCE_DELETED,
        organization=organization,
        actor=actor,
        target=resource,
        data={"before": {"type": resource.type, **_state(resource)}},
        request=request,
    )
    resource.delete()
    # Rules named this resource in their scope: cached permissions must be recompiled.
    organization_bump_authz_version(organization=organization)
