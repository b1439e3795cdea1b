"""Reads of organizations and memberships; lookups through the organization (another
organization's object is 404)."""

from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Count, Model, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from accounts.models import User
from organizations.models import Membership, Organization

M = TypeVar("M", bound=Model)


def get_or_404(queryset: QuerySet[M], message: str, **lookup: object) -> M:
    """The one row of `queryset` matching `lookup`, else 404 with `message`.

    A malformed id (Django raises ValidationError for a string that is not a UUID) is a
    404 as well, never a 500: ids come from forms as well as from URLs.
    """
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, ValidationError):
        raise Http404(message) from None


def in_organization(model: type[M], organization: Organization, pk: object) -> M:
    """The `model` row `pk` of `organization`, its organization loaded with it, else 404
    ("No such group."): another organization's object does not exist for this one."""
    return get_or_404(
        model.objects.select_related("organization"),
        f"No such {model._meta.verbose_name}.",
        organization=organization,
        pk=pk,
    )


def memberships_of(user: User) -> QuerySet[Membership]:
    """The user's memberships with their organizations, for the switcher."""
    return (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )


def organization_choices(user: User) -> list[tuple[object, str]]:
    """(id, name) of the user's organizations, for the switcher on every page: two columns,
    not the memberships and organizations as models."""
    return list(
        Membership.objects.filter(user=user)
        .order_by("organization__name")
        .values_list("organization_id", "organization__name")
    )


# Up to this many memberships, `membership_for` reads them all in its one query.
FEW_MEMBERSHIPS = 20


def membership_for(*, user: User, organization_id: object) -> Membership:
    """The user's membership in the organization, or 404 to anyone outside it.

    Every organization page needs it and the switcher's choices: a user with few
    memberships gets both from one query, the choices kept on the membership as
    `organization_choices` (as `organization_choices()` lists them)."""
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("organization", "user")
        .order_by("organization__name")[: FEW_MEMBERSHIPS + 1]
    )
    wanted = str(organization_id)
    found = next((m for m in memberships if str(m.organization_id) == wanted), None)
    if found is not None and len(memberships) <= FEW_MEMBERSHIPS:
        found.organization_choices = [(m.organization_id, m.organization.name) for m in memberships]  # type: ignore[attr-defined]
        return found
    return get_or_404(
        Membership.objects.select_related("organization", "user"),
        "No such organization.",
        user=user,
        organization_id=organization_id,
    )


def organization_counts(organization: Organization) -> dict[str, int]:
    counts = organization.memberships.aggregate(
        members=Count("pk"), owners=Count("pk", filter=Q(is_owner=True))
    )
    return {**counts, "projects": organization.projects.count()}


def memberships_with_counts(user: User) -> QuerySet[Membership]:
    """The user's memberships, each organization annotated with its member count."""
    members = (
        Membership.objects.filter(organization=OuterRef("organization"))
        .values("organization")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return memberships_of(user).annotate(member_count=Subquery(members))


def members_of(organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("-is_owner", "user__email")
    )


def member_for(*, organization: Organization, membership_id: object) -> Membership:
    """A membership of the organization, or 404: another organization's is never found."""
    return get_or_404(members_of(organization), "No such user.", pk=membership_id)
