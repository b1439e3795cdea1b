"""Reads of the audit trail: filters and keyset pages that stay fast on millions of rows.

Pages are cut by a cursor on (occurred_at, id), never by OFFSET and never counted:
every page of a filtered trail walks one of the model's (filter, time) indexes for
the 51 rows it shows, however deep it is.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from organizations.models import Organization

PAGE_SIZE = 50
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def events_of(organization: Organization) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization).order_by("-occurred_at", "-id")


def recent_events(organization: Organization, *, limit: int) -> list[AuditEvent]:
    return list(events_of(organization)[:limit])


def event_for(organization: Organization, public_id: uuid.UUID) -> AuditEvent | None:
    """One event of the organization by its public id (None: not there, or foreign)."""
    return events_of(organization).filter(public_id=public_id).first()


@dataclass(frozen=True)
class EventFilters:
    """What the trail is narrowed to; every field optional.

    `action` is an event name or `<service>.*`; `principal` is `user:<id>`,
    `application:<id>`, `api_key:<id>`, `scim_token:<id>` or `system`; `target` is a
    target's id or its exact label.
    """

    action: str = ""
    principal: str = ""
    target: str = ""
    target_type: str = ""
    result: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @classmethod
    def from_cleaned(cls, cleaned: dict[str, Any]) -> EventFilters:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in cleaned.items() if k in fields and v not in (None, "")})

    @property
    def active(self) -> bool:
        return self != EventFilters()


def _looks_like_id(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def filter_events(organization: Organization, filters: EventFilters) -> QuerySet[AuditEvent]:
    """The organization's events matching every given filter, newest first.

    Each filter is an equality on an indexed column (or a time range), so the planner
    walks the matching (organization, column, time) index in order.
    """
    events = events_of(organization)
    if filters.action.endswith(".*"):
        events = events.filter(service=filters.action[:-2])
    elif filters.action:
        events = events.filter(action=filters.action)
    if filters.principal == "system":
        # A system event has no actor id either (audit.services): naming both keeps the
        # walk on one range of the actor index, in time order, with no sort.
        events = events.filter(actor_type="", actor_id="")
    elif filters.principal:
        actor_type, _, actor_id = filters.principal.partition(":")
        events = events.filter(actor_type=actor_type, actor_id=actor_id)
    if filters.target:
        if _looks_like_id(filters.target):
            events = events.filter(target_id=filters.target)
        else:
            events = events.filter(target_label=filters.target)
    if filters.target_type:
        events = events.filter(target_type=filters.target_type)
    if filters.result:
        events = events.filter(result=filters.result)
    if filters.since:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until:
        events = events.filter(occurred_at__lt=filters.until)
    return events


def encode_cursor(event: AuditEvent) -> str:
    micros = (event.occurred_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}_{event.pk}"


def decode_cursor(value: str | None) -> tuple[dt.datetime, int] | None:
    """(occurred_at, id) from a cursor; None for a missing or malformed one."""
    if not value:
        return None
    micros, _, pk = value.partition("_")
    try:
        return _EPOCH + dt.timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    newer: str | None  # cursor for the page of newer events, if any
    older: str | None  # cursor for the page of older events, if any
    is_first: bool

    def __iter__(self) -> Iterator[AuditEvent]:  # templates iterate the page itself
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


def event_page(
    events: QuerySet[AuditEvent],
    *,
    older_than: str | None = None,
    newer_than: str | None = None,
    size: int = PAGE_SIZE,
) -> EventPage:
    """One page of `events` (ordered newest first) after or before a cursor; one query
    (two when fewer than a page of newer events remain: the first page is shown)."""
    newer_cursor = decode_cursor(newer_than)
    older_cursor = None if newer_cursor else decode_cursor(older_than)
    if newer_cursor is not None:
        when, pk = newer_cursor
        # `occurred_at >= when` bounds the index range; the OR settles ties on the id.
        rows = list(
            events.filter(occurred_at__gte=when)
            .filter(Q(occurred_at__gt=when) | Q(id__gt=pk))
            .order_by("occurred_at", "id")[: size + 1]
        )
        if len(rows) <= size:
            # Nothing newer than a full page: that is the first page.
            return event_page(events, size=size)
        rows = rows[:size][::-1]
        return EventPage(
            events=rows,
            newer=encode_cursor(rows[0]),
            older=encode_cursor(rows[-1]),
            is_first=False,
        )
    if older_cursor is not None:
        when, pk = older_cursor
        events = events.filter(occurred_at__lte=when).filter(Q(occurred_at__lt=when) | Q(id__lt=pk))
    rows = list(events[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return EventPage(
        events=rows,
        newer=encode_cursor(rows[0]) if rows and older_cursor else None,
        older=encode_cursor(rows[-1]) if more_older else None,
        is_first=older_cursor is None,
    )
