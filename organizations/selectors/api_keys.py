"""Reads of API keys: lists, expiry, one key."""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from organizations.models import APIKey, Application, Membership, Organization
from organizations.selectors.organizations import get_or_404

EXPIRES_SOON = datetime.timedelta(days=7)


def api_keys_of(
    *,
    organization: Organization,
    membership: Membership | None = None,
    application: Application | None = None,
    now: datetime.datetime | None = None,
) -> QuerySet[APIKey]:
    """The organization's keys (of one bearer when given), newest first, in one query.

    Each is annotated with `stops_at`, when it stops working: its own expiry or, sooner,
    the organization's maximum key lifetime counted from its creation (the cap applies
    to existing keys at once, as authentication does); `capped` when the cap decides;
    `is_expired`; and `expires_soon` (within 7 days).
    """
    now = now or timezone.now()
    keys = APIKey.objects.filter(organization=organization)
    if membership is not None:
        keys = keys.filter(bearer_membership=membership)
    if application is not None:
        keys = keys.filter(bearer_application=application)
    if organization.api_key_max_lifetime_days is None:
        stops_at: Any = F("expires_at")
        capped: Any = Value(False)
    else:
        cap = ExpressionWrapper(
            F("created_at") + datetime.timedelta(days=organization.api_key_max_lifetime_days),
            output_field=DateTimeField(),
        )
        is_capped = Q(expires_at__isnull=True) | Q(expires_at__gt=cap)
        stops_at = Case(When(is_capped, then=cap), default=F("expires_at"))
        capped = Case(When(is_capped, then=Value(True)), default=Value(False))
    return (
        keys.select_related("bearer_membership__user", "bearer_application", "default_project")
        .annotate(
            stops_at=stops_at,
            capped=ExpressionWrapper(capped, output_field=BooleanField()),
        )
        .annotate(
            is_expired=Case(
                When(stops_at__lte=now, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
            expires_soon=Case(
                When(Q(stops_at__gt=now) & Q(stops_at__lte=now + EXPIRES_SOON), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .order_by("-created_at")
    )


def api_keys_expiring_soon(
    *,
    organization: Organization,
    membership: Membership | None = None,
    now: datetime.datetime | None = None,
) -> QuerySet[APIKey]:
    """Live keys that stop working within 7 days, soonest first (of one user when given)."""
    now = now or timezone.now()
    return (
        api_keys_of(organization=organization, membership=membership, now=now)
        .filter(stops_at__gt=now, stops_at__lte=now + EXPIRES_SOON)
        .order_by("stops_at")
    )


def api_key_for(*, organization: Organization, api_key_id: object) -> APIKey:
    return get_or_404(
        APIKey.objects.select_related(
            "organization", "bearer_membership__user", "bearer_application"
        ),
        "No such API key.",
        organization=organization,
        pk=api_key_id,
    )
