"""Reads of people: the users list with its filters, one user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Lower
from django_otp.plugins.otp_totp.models import TOTPDevice

from organizations.models import Group, Membership, Organization
from organizations.selectors.organizations import get_or_404
from policies.models import Policy, PolicyAttachment

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


def _filtered(organization: Organization, filters: UserFilters) -> QuerySet[Membership]:
    """The organization's memberships the filters keep, with the user and MFA state."""
    queryset = _with_mfa(
        Membership.objects.filter(organization=organization).select_related("user")
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
    return queryset


def _with_names(rows: list[Membership]) -> list[Membership]:
    """Set `group_names` and `policy_names` (what the list's cells show) on `rows`, in
    one query each whatever their number: names, not model instances, which cost more
    to build than the page's own rows."""
    by_id = {row.pk: row for row in rows}
    for row in rows:
        row.group_names, row.policy_names = [], []  # type: ignore[attr-defined]
    if not rows:
        return rows
    joined = Group.members.through.objects.filter(membership_id__in=by_id)
    for membership_id, name in joined.order_by(Lower("group__name")).values_list(
        "membership_id", "group__name"
    ):
        by_id[membership_id].group_names.append(name)  # type: ignore[attr-defined]
    # The name by a subquery on the policy's key: a join made PostgreSQL hash every
    # policy of the organization for a page's dozen attachments.
    policy_name = Subquery(Policy.objects.filter(pk=OuterRef("policy_id")).values("name"))
    attached = PolicyAttachment.objects.filter(membership_id__in=by_id)
    for membership_id, name in (
        attached.annotate(policy_name=policy_name)
        .order_by("policy_name")
        .values_list("membership_id", "policy_name")
    ):
        by_id[membership_id].policy_names.append(name)  # type: ignore[attr-defined]
    return rows


def users_of(
    organization: Organization, filters: UserFilters | None = None
) -> QuerySet[Membership]:
    """The organization's users with groups, policies and MFA state, in four queries
    whatever the page size. Unknown filter values are ignored, never an error."""
    return (
        _filtered(organization, filters or UserFilters())
        .prefetch_related(
            Prefetch("groups", queryset=Group.objects.order_by(Lower("name"))),
            Prefetch(
                "policy_attachments",
                queryset=PolicyAttachment.objects.select_related("policy").order_by("policy__name"),
            ),
        )
        .order_by("-is_owner", "user__email")
    )


class UserList:
    """The users list for a paginator: owners first, then everyone else, each by email,
    as `users_of` orders them.

    Sorting by (owner, email) spans two tables, so the database joined and top-N sorted
    every membership on every page. Owners are few and the rest are read by email alone,
    which the email index serves: a page reads its own rows, whatever the organization's
    size. One count query gives the total and the owners among it."""

    def __init__(self, organization: Organization, filters: UserFilters | None = None) -> None:
        self._filtered = _filtered(organization, filters or UserFilters())
        self._owners: int | None = None
        self._total = 0

    def count(self) -> int:
        if self._owners is None:
            counts = self._filtered.aggregate(
                total=Count("pk"), owners=Count("pk", filter=Q(is_owner=True))
            )
            self._total, self._owners = counts["total"], counts["owners"]
        return self._total

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[Membership]:
        if not isinstance(index, slice) or index.step is not None:
            raise TypeError("UserList only takes slices without a step.")
        total = self.count()
        owners = self._owners or 0
        start, stop, _ = index.indices(total)
        rows: list[Membership] = []
        if start < min(stop, owners):
            rows += self._filtered.filter(is_owner=True).order_by("user__email")[
                start : min(stop, owners)
            ]
        if stop > owners and stop > start:
            rows += self._filtered.filter(is_owner=False).order_by("user__email")[
                max(start - owners, 0) : stop - owners
            ]
        return _with_names(rows)


def user_for(*, organization: Organization, membership_id: object) -> Membership:
    return get_or_404(
        _with_mfa(Membership.objects.select_related("user", "organization")),
        "No such user.",
        organization=organization,
        pk=membership_id,
    )
