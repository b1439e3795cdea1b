"""Reads of people: the users list with its filters, one user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Lower
from django_otp.plugins.otp_totp.models import TOTPDevice

from organizations.models import Group, Membership, Organization
from organizations.selectors.organizations import get_or_404
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
    if filters.group:
        # A group's id (links from a group's page) or its name, typed (no page lists them).
        group_id = _uuid_or_none(filters.group)
        if group_id is not None:
            queryset = queryset.filter(groups__pk=group_id)
        elif "\x00" in filters.group:  # no name holds NUL, which PostgreSQL refuses
            queryset = queryset.none()
        else:
            queryset = queryset.filter(groups__name__iexact=filters.group.strip())
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
