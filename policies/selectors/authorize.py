"""Reads for `POST /api/v1/authorize`: the principals, projects and resources a batch
names, in a constant number of queries whatever the batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from organizations.models import Application, Membership, Organization, Project, Resource

# A principal as the evaluator names it: ("user", user id) or ("application", its id).
PrincipalRef = tuple[str, uuid.UUID]


def principals_named(
    organization: Organization, refs: Iterable[PrincipalRef]
) -> dict[PrincipalRef, Membership | Application]:
    """The organization's memberships (by user id) and applications among `refs`; ids of
    other organizations, or of nobody, are simply absent. Two queries at most."""
    refs = set(refs)
    user_ids = [pk for kind, pk in refs if kind == "user"]
    application_ids = [pk for kind, pk in refs if kind == "application"]
    found: dict[PrincipalRef, Membership | Application] = {}
    if user_ids:
        # Unordered: the default ordering's join and sort would cost more than the
        # decisions of a batch.
        memberships = (
            Membership.objects.select_related("user")
            .filter(organization=organization, user_id__in=user_ids)
            .order_by()
        )
        for membership in memberships:
            membership.organization = organization  # its authorization version, read once
            found[("user", membership.user_id)] = membership
    if application_ids:
        applications = Application.objects.filter(
            organization=organization, pk__in=application_ids
        ).order_by()
        for application in applications:
            application.organization = organization
            found[("application", application.pk)] = application
    return found


def projects_named(organization: Organization, project_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `project_ids` are projects of the organization (one query)."""
    ids = set(project_ids)
    if not ids:
        return set()
    return set(
        Project.objects.filter(organization=organization, pk__in=ids).values_list("pk", flat=True)
    )


def resources_named(
    organization: Organization, resource_ids: Iterable[uuid.UUID]
) -> list[Resource]:
    """The organization's resources among `resource_ids`, with what deciding reads of them
    (one query)."""
    ids = set(resource_ids)
    if not ids:
        return []
    return list(
        Resource.objects.filter(organization=organization, pk__in=ids)
        .only("pk", "type", "project_id", "tags")
        .order_by()
    )
