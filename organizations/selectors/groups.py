"""Reads of groups and their members."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower

from organizations.models import Group, Membership, Organization
from organizations.selectors.organizations import in_organization


def groups_of(organization: Organization, q: str = "") -> QuerySet[Group]:
    queryset = Group.objects.filter(organization=organization).annotate(
        member_count=Count("members", distinct=True),
        application_count=Count("applications", distinct=True),
        policy_count=Count("policy_attachments", distinct=True),
    )
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return queryset.order_by(Lower("name"))


def group_for(*, organization: Organization, group_id: object) -> Group:
    return in_organization(Group, organization, group_id)


def group_members(group: Group) -> QuerySet[Membership]:
    return group.members.select_related("user").order_by("user__email")


def group_candidates(group: Group, q: str, limit: int = 10) -> list[Membership]:
    """Users of the organization not yet in the group, matching the search."""
    queryset = (
        Membership.objects.filter(organization_id=group.organization_id)
        .exclude(groups=group)
        .select_related("user")
        .order_by("user__email")
    )
    if q:
        queryset = queryset.filter(Q(user__email__icontains=q) | Q(user__full_name__icontains=q))
    return list(queryset[:limit])


def groups_not_joined(membership: Membership) -> QuerySet[Group]:
    return (
        Group.objects.filter(organization_id=membership.organization_id)
        .exclude(members=membership)
        .order_by(Lower("name"))
    )
