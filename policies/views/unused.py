"""Unused access (#16): `/o/<org>/iam/unused-access/?days=N`, per principal, the actions
it holds (its effective permissions) that it has not been allowed for N days (90 unless
asked), from the usage `policies.usage` records.

Guarded by `iam:simulator:use`, as who-can: it tells what any principal may do. Only the
page's principals (25) have their rules compiled and their usage read (one query for the
page), so its cost does not grow with the organization. Owners are left out (no policy
applies to them), and so are suspended members (they hold nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.paginator import Paginator
from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from iamportal.request import search_term
from organizations.models import Application, Membership, Organization
from policies.authz import can, principal_of
from policies.effective import effective_permissions
from policies.forms.shrink import MAX_DAYS
from policies.guards import requires
from policies.models import PermissionUsage
from policies.selectors.tools import rules_of

PRINCIPALS_PER_PAGE = 25
DEFAULT_DAYS = 90


@dataclass(frozen=True, slots=True)
class UnusedRow:
    """One principal of the page: what it holds and, of that, what went unused."""

    kind: str  # "user" or "application"
    subject: Membership | Application
    label: str
    held: int
    unused: list[tuple[str, dt.datetime | None]]  # action, its last use (None: never)


def days_asked(request: HttpRequest) -> int:
    """The window asked for in the query string (`days`), bounded; 90 unless asked."""
    try:
        days = int(request.GET.get("days", DEFAULT_DAYS))
    except ValueError:
        return DEFAULT_DAYS
    return min(max(days, 1), MAX_DAYS)


def _candidates(organization: Organization, q: str) -> QuerySet[Any]:
    """(sort key, label, kind, id) of every principal policies apply to, ordered by label,
    as one query the paginator slices: a page reads its own rows, whatever the size."""
    members = Membership.objects.active().filter(organization=organization, is_owner=False)
    applications = Application.objects.filter(organization=organization)
    if q:
        members = members.filter(user__email__icontains=q)
        applications = applications.filter(name__icontains=q)
    kind = CharField()
    members = (
        members.annotate(
            sort=Lower("user__email"), label=F("user__email"), kind=Value("user", output_field=kind)
        )
        .order_by()
        .values_list("sort", "label", "kind", "pk")
    )
    applications = (
        applications.annotate(
            sort=Lower("name"), label=F("name"), kind=Value("application", output_field=kind)
        )
        .order_by()
        .values_list("sort", "label", "kind", "pk")
    )
    return members.union(applications, all=True).order_by("sort", "kind", "pk")


def _rows(
    organization: Organization, page: list[tuple[str, str, UUID]], days: int
) -> list[UnusedRow]:
    member_ids = [pk for _, kind, pk in page if kind == "user"]
    application_ids = [pk for _, kind, pk in page if kind == "application"]
    subjects: dict[UUID, Membership | Application] = {
        **Membership.objects.select_related("user").in_bulk(member_ids),
        **Application.objects.in_bulk(application_ids),
    }
    held: dict[tuple[str, str], set[str]] = {}
    for _, kind, pk in page:
        subject = subjects[pk]
        subject.organization = organization
        principal = principal_of(subject)
        permissions = effective_permissions(principal, rules_of(subject, principal, organization))
        held[(kind, principal.id)] = {permission.action for permission in permissions}
    # The page's usage, one query: the latest allow of each (principal, action).
    last: dict[tuple[str, str, str], dt.datetime] = {}
    usage = PermissionUsage.objects.filter(
        organization=organization,
        principal_id__in=[UUID(ident) for _, ident in held],
        last_allowed_at__isnull=False,
    ).values_list("principal_type", "principal_id", "action", "last_allowed_at")
    for kind, ident, action, at in usage:
        key = (kind, str(ident), action)
        if key not in last or at > last[key]:
            last[key] = at
    since = timezone.now() - dt.timedelta(days=days)
    rows = []
    for label, kind, pk in page:
        ident = principal_of(subjects[pk]).id
        actions = held[(kind, ident)]
        unused = [
            (action, last.get((kind, ident, action)))
            for action in sorted(actions)
            if (at := last.get((kind, ident, action))) is None or at < since
        ]
        rows.append(UnusedRow(kind, subjects[pk], label, len(actions), unused))
    return rows


@requires("iam:simulator:use")
@require_GET
def unused_access_view(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Per principal (25 a page, searchable), the actions held but not used for N days."""
    organization = request.organization  # type: ignore[attr-defined]
    days = days_asked(request)
    q = search_term(request)
    page = Paginator(_candidates(organization, q), PRINCIPALS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context: dict[str, Any] = {
        "days": days,
        "q": q,
        "page": page,
        "rows": _rows(organization, [row[1:] for row in page.object_list], days),
        # Decided once for the page, not per row.
        "may_attach": can(request, "iam:policies:attach"),
    }
    return render(request, "policies/tools/unused_access.html", context)
