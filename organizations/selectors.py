"""Reads scoped to an organization: another organization's objects are never found."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from accounts.models import User
from organizations.models import Invoice, Membership, Organization, Project


def memberships_of(user: User) -> QuerySet[Membership]:
    """The user's memberships with their organizations, for the switcher."""
    return (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )


def membership_for(*, user: User, organization_id: object) -> Membership:
    """The user's membership in the organization, or 404 to anyone outside it."""
    try:
        return Membership.objects.select_related("organization", "user").get(
            user=user, organization_id=organization_id
        )
    except (Membership.DoesNotExist, ValueError):
        raise Http404("No such organization.") from None


def organization_counts(organization: Organization) -> dict[str, int]:
    counts = organization.memberships.aggregate(
        members=Count("pk"), owners=Count("pk", filter=Q(is_owner=True))
    )
    return {**counts, "projects": organization.projects.count()}


def projects_of(organization: Organization) -> QuerySet[Project]:
    return Project.objects.filter(organization=organization)


def project_for(*, organization: Organization, project_id: object) -> Project:
    try:
        return Project.objects.select_related("organization").get(
            organization=organization, pk=project_id
        )
    except (Project.DoesNotExist, ValueError):
        raise Http404("No such project.") from None


def invoices_of(organization: Organization) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organization=organization)


def invoice_for(*, organization: Organization, invoice_id: object) -> Invoice:
    try:
        return Invoice.objects.get(organization=organization, pk=invoice_id)
    except (Invoice.DoesNotExist, ValueError):
        raise Http404("No such invoice.") from None


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
    try:
        return members_of(organization).get(pk=membership_id)
    except (Membership.DoesNotExist, ValueError):
        raise Http404("No such user.") from None
