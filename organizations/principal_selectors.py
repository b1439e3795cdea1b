"""Reads of people and groups, scoped to one organization: foreign ids are 404."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Lower
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.tokens import token_digest
from organizations.models import Group, Invitation, Membership, Organization
from organizations.selectors import get_or_404
from policies.models import PolicyAttachment

KINDS = (("owner", "Owners"), ("guest", "Guests"), ("member", "Members"))


@dataclass(frozen=True)
class UserFilters:
    q: str = ""
    kind: str = ""
    status: str = ""
    group: str = ""
    mfa: str = ""  # "yes" | "no" | ""


def _with_mfa(queryset: QuerySet[Membership]) -> QuerySet[Membership]:
    enrolled = TOTPDevice.objects.filter(user=OuterRef("user"), confirmed=True)
    return queryset.annotate(mfa_enrolled=Exists(enrolled))


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def users_of(
    organization: Organization, filters: UserFilters | None = None
) -> QuerySet[Membership]:
    """The organization's users with groups, policies and MFA state, in four queries
    whatever the page size. Unknown filter values are ignored, never an error."""
    filters = filters or UserFilters()
    queryset = _with_mfa(
        Membership.objects.filter(organization=organization).select_related("user")
    ).prefetch_related(
        Prefetch("groups", queryset=Group.objects.order_by(Lower("name"))),
        Prefetch(
            "policy_attachments",
            queryset=PolicyAttachment.objects.select_related("policy").order_by("policy__name"),
        ),
    )
    if filters.q:
        queryset = queryset.filter(
            Q(user__email__icontains=filters.q) | Q(user__full_name__icontains=filters.q)
        )
    if filters.kind == "owner":
        queryset = queryset.filter(is_owner=True)
    elif filters.kind == "member":
        queryset = queryset.filter(is_owner=False, user__managed_by=organization)
    elif filters.kind == "guest":
        queryset = queryset.filter(is_owner=False).exclude(user__managed_by=organization)
    if filters.status in Membership.Status.values:
        queryset = queryset.filter(status=filters.status)
    group_id = _uuid_or_none(filters.group)
    if group_id is not None:
        queryset = queryset.filter(groups__pk=group_id)
    if filters.mfa in ("yes", "no"):
        queryset = queryset.filter(mfa_enrolled=filters.mfa == "yes")
    return queryset.order_by("-is_owner", "user__email")


def user_for(*, organization: Organization, membership_id: object) -> Membership:
    return get_or_404(
        _with_mfa(Membership.objects.select_related("user", "organization")),
        "No such user.",
        organization=organization,
        pk=membership_id,
    )


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
    return get_or_404(
        Group.objects.select_related("organization"),
        "No such group.",
        organization=organization,
        pk=group_id,
    )


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


def invitations_of(organization: Organization, status: str = "") -> QuerySet[Invitation]:
    queryset = Invitation.objects.filter(organization=organization).select_related("invited_by")
    if status in Invitation.Status.values:
        queryset = queryset.filter(status=status)
    return queryset.prefetch_related(
        Prefetch("groups", queryset=Group.objects.order_by(Lower("name")))
    ).order_by("-created_at")


def invitation_for(*, organization: Organization, invitation_id: object) -> Invitation:
    return get_or_404(
        Invitation.objects.select_related("organization"),
        "No such invitation.",
        organization=organization,
        pk=invitation_id,
    )


def invitation_by_token(raw: str) -> Invitation | None:
    if not raw or len(raw) > 128:
        return None
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=token_digest(raw))
        .first()
    )
    return invitation
