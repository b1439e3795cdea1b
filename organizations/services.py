"""Writes to organizations, projects and billing: invariants, audit and version bumps."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from iamportal.text import unsafe_characters
from organizations.models import BillingContact, Membership, Organization, Project

DEFAULT_PROJECT_NAME = "default"
ORGANIZATION_NAME_MAX_LENGTH = Organization._meta.get_field("name").max_length


def organization_name_clean(name: str) -> str:
    """The name as stored (surrounding spaces dropped), or ValidationError with a message.

    Every way a name comes in (sign-up, the organization forms, the admin, these services)
    checks it here: a newline breaks every email that names the organization, and bidi
    overrides or zero-width characters make it display as another name.
    """
    name = name.strip()
    if not name:
        raise ValidationError("Enter an organization name.", code="required")
    if len(name) > ORGANIZATION_NAME_MAX_LENGTH:
        raise ValidationError(
            f"Use at most {ORGANIZATION_NAME_MAX_LENGTH} characters (this name has {len(name)}).",
            code="max_length",
        )
    unsafe = unsafe_characters(name)
    if unsafe:
        codes = ", ".join(f"U+{ord(char):04X}" for char in unsafe)
        raise ValidationError(
            f"Use a name on one line without control or invisible characters (found {codes}).",
            code="invalid",
        )
    return name


def organization_bump_authz_version(*, organization: Organization) -> None:
    """Invalidate every cached permission of the organization, in the caller's transaction."""
    Organization.objects.filter(pk=organization.pk).update(authz_version=F("authz_version") + 1)


@transaction.atomic
def organization_create(
    *, name: str, owner: User, request: HttpRequest | None = None
) -> Organization:
    """Create an organization with its default project and `owner` as its first owner."""
    if owner.managed_by_id is not None:
        raise ValidationError(
            "Accounts created by an organization cannot create or own organizations."
        )
    organization = Organization.objects.create(name=organization_name_clean(name))
    Project.objects.create(
        organization=organization,
        name=DEFAULT_PROJECT_NAME,
        description="Created with the organization.",
        is_default=True,
    )
    Membership.objects.create(organization=organization, user=owner, is_owner=True)
    record(
        action=events.ORGANIZATION_CREATED,
        organization=organization,
        actor=owner,
        target=organization,
        request=request,
    )
    return organization


@transaction.atomic
def organization_rename(
    *, organization: Organization, name: str, actor: User, request: HttpRequest | None = None
) -> Organization:
    # Read what is stored: a bound ModelForm has already changed the instance in memory.
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    before = organization.name
    organization.name = organization_name_clean(name)
    organization.save(update_fields=["name", "updated_at"])
    record(
        action=events.ORGANIZATION_UPDATED,
        organization=organization,
        actor=actor,
        target=organization,
        data=diff({"name": before}, {"name": organization.name}),
        request=request,
    )
    return organization


def _check_project_name(*, organization: Organization, name: str, exclude: Project | None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Enter a project name."})
    clash = Project.objects.filter(organization=organization, name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ValidationError({"name": f'A project named "{name}" already exists.'})
    return name


@transaction.atomic
def project_create(
    *,
    organization: Organization,
    name: str,
    description: str = "",
    actor: User,
    request: HttpRequest | None = None,
) -> Project:
    name = _check_project_name(organization=organization, name=name, exclude=None)
    project = Project.objects.create(
        organization=organization, name=name, description=description.strip()
    )
    record(
        action=events.PROJECT_CREATED,
        organization=organization,
        actor=actor,
        target=project,
        data={"after": {"name": project.name, "description": project.description}},
        request=request,
    )
    return project


@transaction.atomic
def project_update(
    *,
    project: Project,
    name: str,
    description: str,
    actor: User,
    request: HttpRequest | None = None,
) -> Project:
    # Read what is stored: a bound ModelForm has already changed the instance in memory.
    project = (
        Project.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=project.pk)
    )
    before = {"name": project.name, "description": project.description}
    project.name = _check_project_name(
        organization=project.organization, name=name, exclude=project
    )
    project.description = description.strip()
    project.save(update_fields=["name", "description", "updated_at"])
    after = {"name": project.name, "description": project.description}
    if before != after:
        record(
            action=events.PROJECT_UPDATED,
            organization=project.organization,
            actor=actor,
            target=project,
            data=diff(before, after),
            request=request,
        )
    return project


@transaction.atomic
def project_delete(
    *, project: Project, confirm_name: str, actor: User, request: HttpRequest | None = None
) -> None:
    """Delete a project; the default project stays, and the name must be typed to confirm."""
    if project.is_default:
        raise ValidationError("The default project cannot be deleted.")
    if confirm_name.strip() != project.name:
        raise ValidationError({"confirm_name": "Type the project name exactly to confirm."})
    organization = project.organization
    record(
        action=events.PROJECT_DELETED,
        organization=organization,
        actor=actor,
        target=project,
        data={"before": {"name": project.name, "description": project.description}},
        request=request,
    )
    project.delete()
    # Rules may name this project in their scope: cached permissions must be recompiled.
    organization_bump_authz_version(organization=organization)


@transaction.atomic
def billing_contact_update(
    *,
    organization: Organization,
    values: dict[str, Any],
    actor: User,
    request: HttpRequest | None = None,
) -> BillingContact:
    fields = ["name", "email", "company", "address", "country", "vat_number"]
    contact = BillingContact.objects.filter(organization=organization).first()
    before = {f: getattr(contact, f) for f in fields} if contact else {}
    if contact is None:
        contact = BillingContact(organization=organization)
    for field in fields:
        setattr(contact, field, (values.get(field) or "").strip())
    contact.full_clean()
    contact.save()
    record(
        action=events.BILLING_CONTACT_UPDATED,
        organization=organization,
        actor=actor,
        target=contact,
        target_label=contact.name,
        data=diff(before, {f: getattr(contact, f) for f in fields}),
        request=request,
    )
    return contact
