"""The audit trail pages: the filtered list, one event, exports and the integrity check."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit import events
from audit.forms import EventFilterForm
from audit.integrity import verify_chain
from audit.models import AuditEvent
from audit.selectors import EventFilters, event_for, event_page, filter_events
from audit.services import record
from policies.guards import requires

EXPORT_CHUNK = 2000
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
CSV_COLUMNS = (
    "occurred_at",
    "action",
    "result",
    "actor_type",
    "actor_id",
    "actor_label",
    "target_type",
    "target_id",
    "target_label",
    "ip",
    "user_agent",
    "request_id",
    "data",
    "event_id",
    "sequence",
    "hash",
)
_ANY_EVENT = UUID(int=0)
_FILTER_FIELDS = ("action", "principal", "target", "target_type", "result", "since", "until")


def _filters(request: HttpRequest) -> tuple[EventFilterForm, EventFilters, str]:
    """The bound filter form, the filters it yields (valid fields only) and their query
    string (without cursors), for links that keep the filters."""
    params = {k: v for k, v in request.GET.items() if k in _FILTER_FIELDS and v}
    form = EventFilterForm(params, organization=request.organization)  # type: ignore[attr-defined]
    form.is_valid()
    return form, EventFilters.from_cleaned(form.cleaned_data), urlencode(params)


@requires("audit:events:list")
@require_GET
def event_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    form, filters, query = _filters(request)
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


class _Echo:
    """A file-like object for csv.writer that hands back each line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _csv_safe(value: str) -> str:
    # Spreadsheets run cells starting with these as formulas: a label is not code.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "occurred_at": event.occurred_at.isoformat(),
        "action": event.action,
        "result": event.result,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "ip": event.ip or "",
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "data": event.data,
        "event_id": str(event.public_id),
        "sequence": event.sequence,
        "hash": event.hash,
    }


def _csv_lines(rows: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in rows:
        row = _row(event)
        row["data"] = json.dumps(row["data"], sort_keys=True, cls=DjangoJSONEncoder)
        yield writer.writerow([_csv_safe(str(row[column])) for column in CSV_COLUMNS])


def _json_lines(rows: Iterator[AuditEvent]) -> Iterator[str]:
    for event in rows:
        yield json.dumps(_row(event), cls=DjangoJSONEncoder) + "\n"


@requires("audit:events:export")
@require_GET
def event_export(request: HttpRequest, org_id: UUID, fmt: str) -> HttpResponse:
    """The filtered events, streamed in chunks: memory stays flat for any trail size."""
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such export format.")
    organization = request.organization  # type: ignore[attr-defined]
    _, filters, query = _filters(request)
    with transaction.atomic():
        exported = record(
            action=events.AUDIT_EXPORTED,
            organization=organization,
            actor=request.user,
            target_label=fmt.upper() + (f" of {query}" if query else ""),
            data={"format": fmt, "filters": {k: str(v) for k, v in vars(filters).items() if v}},
            request=request,
        )
    # Only what was recorded before this export: a stable snapshot of a growing trail.
    rows = filter_events(organization, filters).filter(id__lt=exported.pk)
    lines = _csv_lines if fmt == "csv" else _json_lines
    response = StreamingHttpResponse(
        lines(rows.iterator(chunk_size=EXPORT_CHUNK)), content_type=EXPORT_FORMATS[fmt]
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    name = f"audit-{organization.pk}-{stamp}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


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
    form, filters, query = _filters(request)
    page = event_page(filter_events(organization, filters))
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "query": query,
        "verification": verification,
    }
    return render(request, "audit/event_list.html", context)
