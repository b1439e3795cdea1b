"""The audit trail pages: the filtered list, one event, exports and the integrity check."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from audit import events
from audit.exports import EXPORT_FORMATS, export_response, filters_of
from audit.integrity import verify_chain
from audit.selectors import event_for, event_page, filter_events
from audit.services import record
from policies.guards import requires

_ANY_EVENT = UUID(int=0)


@requires("audit:events:list")
@require_GET
def event_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    form, filters, query = filters_of(request.GET, request.organization)  # type: ignore[attr-defined]
    page = event_page(
        filter_events(request.organization, filters),  # type: ignore[attr-defined]
        older_than=request.GET.get("older"),
        newer_than=request.GET.get("newer"),
    )
    # One reverse() per page rather than per row.
    detail_prefix = reverse("audit:event_detail", args=[org_id, _ANY_EVENT]).removesuffix(
        f"{_ANY_EVENT}/"
    )
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "query": query,
        "detail_prefix": detail_prefix,
    }
    template = "audit/event_list.html"
    if request.htmx and request.htmx.target == "audit-results":  # type: ignore[attr-defined]
        template += "#results"
    return render(request, template, context)


def _changes(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the before/after table: one per field named on either side."""
    before, after = data.get("before"), data.get("after")
    if not isinstance(before, dict) and not isinstance(after, dict):
        return []
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}

    def shown(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, cls=DjangoJSONEncoder)

    return [
        {
            "field": key,
            "before": shown(before[key]) if key in before else None,
            "after": shown(after[key]) if key in after else None,
            "changed": before.get(key) != after.get(key),
        }
        for key in dict.fromkeys([*before, *after])
    ]


@requires("audit:events:list")
@require_GET
def event_detail(request: HttpRequest, org_id: UUID, event_id: UUID) -> HttpResponse:
    event = event_for(request.organization, event_id)  # type: ignore[attr-defined]
    if event is None:
        raise Http404("No such event.")
    data = event.data if isinstance(event.data, dict) else {"value": event.data}
    other = {k: v for k, v in data.items() if k not in ("before", "after")}
    context = {
        "event": event,
        "changes": _changes(data),
        "other_data": json.dumps(other, indent=2, sort_keys=True, cls=DjangoJSONEncoder)
        if other
        else "",
    }
    return render(request, "audit/event_detail.html", context)


@requires("audit:events:export")
@require_GET
def event_export(request: HttpRequest, org_id: UUID, fmt: str) -> HttpResponse:
    """The filtered events, streamed in chunks: memory stays flat for any trail size."""
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such export format.")
    _, filters, query = filters_of(request.GET, request.organization)  # type: ignore[attr-defined]
    return export_response(request, filters, query, fmt)


@requires("audit:events:list")
@require_POST
def verify(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Walk the organization's hash chain (owners only) and show the first broken link."""
    if not request.membership.is_owner:  # type: ignore[attr-defined]
        raise PermissionDenied("Only owners verify the audit trail's integrity.")
    organization = request.organization  # type: ignore[attr-defined]
    verification = verify_chain(organization.pk)
    with transaction.atomic():
        record(
            action=events.AUDIT_VERIFIED,
            organization=organization,
            actor=request.user,
            target_label=verification.summary,
            result="success" if verification.ok else "failed",
            data={
                "ok": verification.ok,
                "checked": verification.checked,
                "sequence": verification.sequence,
                "problem": verification.problem,
            },
            request=request,
        )
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "audit/event_list.html#verification", {"verification": verification})
    form, filters, query = filters_of(request.GET, request.organization)  # type: ignore[attr-defined]
    page = event_page(filter_events(organization, filters))
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "query": query,
        "verification": verification,
    }
    return render(request, "audit/event_list.html", context)
