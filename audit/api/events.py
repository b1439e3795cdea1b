"""API operations on the audit trail: the filtered list (newest first, cursor paging), one
event, and exports, with the console's filters and the same selectors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema

from audit.exports import event_row, export_response, filters_of
from audit.selectors import event_for, event_page, filter_events
from iamportal.api_errors import error_responses
from policies.guards import api_requires

router = Router(tags=["Audit trail"])

MAX_LIMIT = 100


class EventFiltersIn(Schema):
    """The trail's filters, as in the console: `action` is an event name or
    `<service>.*`; `principal` is `user:<id>`, `application:<id>`, `api_key:<id>`,
    `scim_token:<id>` or `system`; `target` is a target's id or its exact label; times
    are ISO 8601."""

    action: str = ""
    principal: str = ""
    target: str = ""
    target_type: str = ""
    result: Literal["", "success", "denied", "failed"] = ""
    since: str = ""
    until: str = ""


class EventOut(Schema):
    event_id: uuid.UUID
    occurred_at: dt.datetime
    action: str
    result: str
    actor_type: str
    actor_id: str
    actor_label: str
    target_type: str
    target_id: str
    target_label: str
    ip: str
    user_agent: str
    request_id: str
    data: Any
    sequence: int
    hash: str


class EventPageOut(Schema):
    events: list[EventOut]
    next: str | None = None


def _filters(request: HttpRequest, given: EventFiltersIn) -> tuple[Any, str]:
    """The console's filters from the query, refusing what the console's form refuses."""
    params = {k: v for k, v in given.dict().items() if v}
    form, filters, query = filters_of(params, request.organization)  # type: ignore[attr-defined]
    if form.errors:
        raise ValidationError({field: list(errors) for field, errors in form.errors.items()})
    return filters, query


@router.get(
    "/audit/events",
    response={200: EventPageOut, **error_responses(400, 401, 403)},
    operation_id="audit_events_list",
)
@api_requires("audit:events:list")
def events_list(
    request: HttpRequest,
    filters: Query[EventFiltersIn],
    cursor: str | None = None,
    limit: int = 50,
) -> EventPageOut:
    """The organization's events, newest first. Pass the response's `next` as `cursor`
    for the next (older) page; `limit` is 1 to 100."""
    chosen, _ = _filters(request, filters)
    size = min(max(limit, 1), MAX_LIMIT)
    page = event_page(
        filter_events(request.organization, chosen),  # type: ignore[attr-defined]
        older_than=cursor,
        size=size,
    )
    return EventPageOut(events=[event_row(event) for event in page], next=page.older)


@router.get(
    "/audit/events/export",
    response={200: None, **error_responses(400, 401, 403)},
    operation_id="audit_events_export",
)
@api_requires("audit:events:export")
def events_export(
    request: HttpRequest,
    filters: Query[EventFiltersIn],
    format: Literal["jsonl", "csv"] = "jsonl",
) -> StreamingHttpResponse:
    """The filtered events, streamed as JSON lines or CSV; the export is itself recorded."""
    chosen, query = _filters(request, filters)
    return export_response(request, chosen, query, format)


@router.get(
    "/audit/events/{event_id}",
    response={200: EventOut, **error_responses(401, 403, 404)},
    operation_id="audit_events_read",
)
@api_requires("audit:events:list")
def events_read(request: HttpRequest, event_id: uuid.UUID) -> dict[str, Any]:
    """One event of the organization's trail."""
    event = event_for(request.organization, event_id)  # type: ignore[attr-defined]
    if event is None:
        raise Http404("No such event.")
    return event_row(event)
