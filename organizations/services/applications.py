"""Writes to applications, the organization's non-human principals."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from iamportal.names import unique_name
from organizations.models import (
    Application,
    Organization,
)
from organizations.services.organizations import organization_bump_authz_version
from organizations.services.people import require_retag_within_rights
from organizations.tags import check_tags
from policies.authz import subject_of


def _clean_name(*, organization: Organization, name: str, exclude: Application | None) -> str:
    return unique_name(
        name,
        taken=Application.objects.filter(organization=organization),
        exclude=exclude,
        what="an application",
        max_length=Application._meta.get_field("name").max_length,
    )


def _clean_description(description: str) -> str:
    description = description.strip()
    if len(description) > Application._meta.get_field("description").max_length:
        raise ValidationError({"description": "A description is at most 1000 characters."})
    return description


def _application_data(application: Application) -> dict[str, Any]:
    return {"name": application.name, "description": application.description}


@transaction.atomic
def application_create(
    *,
    organization: Organization,
    name: str,
    description: str = "",
    actor: User,
    request: HttpRequest | None = None,
) -> Application:
    """Create an application; names are unique in the organization, ignoring case."""
    application = Application.objects.create(
        organization=organization,
        name=_clean_name(organization=organization, name=name, exclude=None),
        description=_clean_description(description),
        created_by=actor,
    )
    record(
        action=events.APPLICATION_CREATED,
        organization=organization,
        actor=actor,
        target=application,
        data={"after": _application_data(application)},
        request=request,
    )
    return application


@transaction.atomic
def application_update(
    *,
    application: Application,
    name: str,
    description: str,
    actor: User,
    request: HttpRequest | None = None,
) -> Application:
    """Rename and describe an application."""
    # Read what is stored: a bound form may have changed the instance in memory.
    application = (
        Application.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=application.pk)
    )
    before = _application_data(application)
    application.name = _clean_name(
        organization=application.organization, name=name, exclude=application
    )
    application.description = _clean_description(description)
    application.save(update_fields=["name", "description", "updated_at"])
    after = _application_data(application)
    if before != after:
        record(
            action=events.APPLICATION_UPDATED,
            organization=application.organization,
            actor=actor,
            target=application,
            data={"before": before, "after": after},
            request=request,
        )
    return application


@transaction.atomic
def application_set_tags(
    *,
    application: Application,
    tags: dict[str, str],
    actor: User | None,
    request: HttpRequest | None = None,
) -> Application:
    """Replace an application's tags, which policy conditions read (`principal.tags`),
    within the author's rights; never through the application's own key (as nobody
    retags themselves). Audited and the authorization version bumped, when they change."""
    tags = check_tags(tags)
    application = (
        Application.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=application.pk)
    )
    subject = subject_of(request) if request is not None else None
    if isinstance(subject, Application) and subject.pk == application.pk:
        raise ValidationError("An application cannot change its own tags.")
    if application.tags == tags:
        return application
    require_retag_within_rights(
        principal=application, actor=actor, request=request, label=application.name
    )
    before, application.tags = application.tags, tags
    application.save(update_fields=["tags", "updated_at"])
    # Cached decisions evaluated conditions on the old tags.
    organization_bump_authz_version(organization=application.organization)
    record(
        action=events.APPLICATION_UPDATED,
        organization=application.organization,
        actor=actor,
        target=application,
        data=diff({"tags": before}, {"tags": tags}),
        request=request,
    )
    return application


@transaction.atomic
def application_delete(
    *,
    application: Application,
    confirm_name: str,
    actor: User,
    request: HttpRequest | None = None,
) -> None:
    """Delete an application with its API keys, group memberships and attachments.

    The name must be typed exactly: its keys stop working at once.
    """
    if confirm_name.strip() != application.name:
        raise ValidationError({"confirm_name": "Type the application name exactly to confirm."})
    organization = application.organization
    record(
        action=events.APPLICATION_DELETED,
        organization=organization,
        actor=actor,
        target=application,
        data={
            "before": {
                **_application_data(application),
                "api_keys": list(application.api_keys.values_list("access_key", flat=True)),
                "groups": list(application.groups.values_list("name", flat=True)),
            }
        },
        request=request,
    )
    application.delete()
    organization_bump_authz_version(organization=organization)
