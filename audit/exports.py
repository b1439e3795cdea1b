"""The trail read out: filters from a query string, and exports streamed as CSV or JSON
lines. The console's pages and the API share them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from audit import events
from audit.forms import EventFilterForm
from audit.models import AuditEvent
from audit.selectors import EventFilters, filter_events
from audit.services import record
from organizations.models import Organization

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
FILTER_FIELDS = ("action", "principal", "target", "target_type", "result", "since", "until")


def filters_of(
    params: Mapping[str, str], organization: Organization
) -> tuple[EventFilterForm, EventFilters, str]:
    """The bound filter form, the filters it yields (valid fields only) and their query
    string (without cursors), for links that keep the filters."""
    given = {k: v for k, v in params.items() if k in FILTER_FIELDS and v}
    form = EventFilterForm(given, organization=organization)
    form.is_valid()
    return form, EventFilters.from_cleaned(form.cleaned_data), urlencode(given)


class _Echo:
    """A file-like object for csv.writer that hands back each line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _csv_safe(value: str) -> str:
    # Spreadsheets run cells starting with these as formulas: a label is not code.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def event_row(event: AuditEvent) -> dict[str, Any]:
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
        row = event_row(event)
        row["data"] = json.dumps(row["data"], sort_keys=True, cls=DjangoJSONEncoder)
        yield writer.writerow([_csv_safe(str(row[column])) for column in CSV_COLUMNS])


def _json_lines(rows: Iterator[AuditEvent]) -> Iterator[str]:
    for event in rows:
        yield json.dumps(event_row(event), cls=DjangoJSONEncoder) + "\n"


def export_response(
    request: HttpRequest, filters: EventFilters, query: str, fmt: str
) -> StreamingHttpResponse:
    """Record the export, then stream the events recorded before it (a stable snapshot of
    a growing trail) as `fmt` ("csv" or "jsonl")."""
    organization = request.organization  # type: ignore[attr-defined]
    with transaction.atomic():
        exported = record(
            action=events.AUDIT_EXPORTED,
            organization=organization,
            actor=request.user,
            target_label=fmt.upper() + (f" of {query}" if query else ""),
            data={"format": fmt, "filters": {k: str(v) for k, v in vars(filters).items() if v}},
            request=request,
        )
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
