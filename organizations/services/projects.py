"""Writes to projects."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from iamportal.names import unique_name
from organizations.models import Organization, Project
from organizations.services.organizations import organization_bump_authz_version


def _check_project_name(*, organization: Organization, name: str, exclude: Project | None) -> str:
    projects = Project.objects.filter(organization=organization)
    return unique_name(name, taken=projects, exclude=exclude, what="a project")


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
