from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEvent
from organizations.models import Organization


def events_of(organization: Organization) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization).order_by("-occurred_at", "-id")


def recent_events(organization: Organization, *, limit: int) -> list[AuditEvent]:
    return list(events_of(organization)[:limit])
