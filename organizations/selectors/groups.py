"""Reads of groups and their members."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower

from organizations.models import Application, Group, Membership, Organization
from organizations.selectors.organizations import in_organization
from policies.models import PolicyAttachment


def groups_of(organization: Organization, q: str = "") -> QuerySet[Group]:
    queryset = Group.objects.filter(organization=organization).annotate(
        member_count=Count("members", distinct=True),
        application_count=Count("applications", distinct=True),
        policy_count=Count("policy_attachments", distinct=True),
    )
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return queryset.order_by(Lower("name"))


def groups_listed(organization: Organization, q: str = "") -> QuerySet[Group]:
    """The groups list's rows, without counts: counting every group's members to show a
    page of 25 grew with the organization (see `with_counts`)."""
    queryset = Group.objects.filter(organization=organization)
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return queryset.order_by(Lower("name"), "pk")


def _count_of(queryset: QuerySet[Any], field: str) -> Coalesce:
    # A count per group by subquery: joining the three relations at once would count
    # their cross product. COUNT(*), not COUNT(id): the id is in no index on the group,
    # so counting it read each row from the table (2,300 pages for 25 groups of ~100
    # members); rows alone are counted from the (group, ...) index.
    counted = queryset.filter(**{field: OuterRef("pk")}).order_by().values(field)
    return Coalesce(Subquery(counted.annotate(n=Count("*")).values("n")), 0)


def with_counts(groups: Iterable[Group]) -> list[Group]:
    """`groups` with their member, application and policy counts: one query over these
    groups only (the list shows 25; counting every group's members grew with the
    organization)."""
    groups = list(groups)
    if not groups:
        return groups
    rows = (
        Group.objects.filter(pk__in=[group.pk for group in groups])
        .order_by()  # the rows keep the page's order: no sort
        .annotate(
            member_count=_count_of(Group.members.through.objects.all(), "group"),
            application_count=_count_of(Group.applications.through.objects.all(), "group"),
            policy_count=_count_of(PolicyAttachment.objects.all(), "group"),
        )
        .values("pk", "member_count", "application_count", "policy_count")
    )
    counts = {row["pk"]: row for row in rows}
    for group in groups:
        row = counts.get(group.pk, {})
        group.member_count = row.get("member_count", 0)  # type: ignore[attr-defined]
        group.application_count = row.get("application_count", 0)  # type: ignore[attr-defined]
        group.policy_count = row.get("policy_count", 0)  # type: ignore[attr-defined]
    return groups


def group_for(*, organization: Organization, group_id: object) -> Group:
    return in_organization(Group, organization, group_id)


def group_members(group: Group, q: str = "") -> QuerySet[Membership]:
    """The group's users by email, those matching `q` (email or name) when given."""
    members = group.members.select_related("user")
    if q:
        members = members.filter(Q(user__email__icontains=q) | Q(user__full_name__icontains=q))
    return members.order_by("user__email", "pk")


def addable_members(group: Group) -> QuerySet[Membership]:
    """Users of the group's organization not in it, for the add-user picker."""
    return (
        Membership.objects.filter(organization_id=group.organization_id)
        .exclude(groups=group)
        .select_related("user")
        .order_by("user__email")
    )


def groups_not_joined(membership: Membership) -> QuerySet[Group]:
    return (
        Group.objects.filter(organization_id=membership.organization_id)
        .exclude(members=membership)
        .order_by(Lower("name"))
    )


def groups_of_organization(organization: Organization) -> QuerySet[Group]:
    """Every group of the organization, for a picker to search (never to list whole)."""
    return Group.objects.filter(organization=organization).order_by(Lower("name"))


def addable_applications(group: Group) -> QuerySet[Application]:
    """Applications of the group's organization not in it, for the add-application picker."""
    return (
        Application.objects.filter(organization_id=group.organization_id)
        .exclude(groups=group)
        .order_by(Lower("name"))
    )
