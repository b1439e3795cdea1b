"""The retention purge: delete each organization's events older than its retention.

Only the oldest events go, in chain order, and the chain head remembers the last
purged link, so the verifier can tell a purge from a removal out of order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit import events
from audit.models import AuditChain, AuditEvent
from audit.services import record
from organizations.models import Organization

BATCH = 5000
# Events without an organization (sign-ins of unknown addresses, sign-outs) are kept
# for this long; an operator may change it in settings.
DEFAULT_UNSCOPED_RETENTION_DAYS = 90


@dataclass(frozen=True)
class Purged:
    organization: Organization | None
    deleted: int
    cutoff: dt.datetime


def _purge_chain(organization: Organization | None, *, cutoff: dt.datetime) -> int:
    """Delete the chain's events older than `cutoff`, oldest first, in batches."""
    organization_id = organization.pk if organization else None
    old = AuditEvent.objects.filter(organization_id=organization_id, occurred_at__lt=cutoff)
    # Clocks may step back: purge up to the newest old event's place, never past it.
    last = old.aggregate(last=Max("sequence"))["last"]
    if last is None:
        return 0
    deleted = 0
    while True:
        with transaction.atomic():
            head = AuditChain.lock_head(organization_id)
            if head.purged_sequence >= last:
                break
            upto = min(last, head.purged_sequence + BATCH)
            batch = AuditEvent.objects.filter(
                organization_id=organization_id,
                sequence__gt=head.purged_sequence,
                sequence__lte=upto,
            )
            anchor = (
                AuditEvent.objects.filter(organization_id=organization_id, sequence__lte=upto)
                .order_by("-sequence")
                .values_list("sequence", "hash")
                .first()
            )
            deleted += batch.purge_prefix()
            if anchor is not None:
                head.purged_sequence, head.purged_hash = anchor
            else:
                head.purged_sequence = upto
            head.save(update_fields=["purged_sequence", "purged_hash"])
    return deleted


def purge(
    *, now: dt.datetime | None = None, organization: Organization | None = None
) -> list[Purged]:
    """Purge every organization (or one) by its `audit_retention_days`; each purge is
    itself recorded in the organization's trail. Returns what was deleted where."""
    now = now or timezone.now()
    results: list[Purged] = []
    organizations = (
        Organization.objects.filter(pk=organization.pk)
        if organization
        else Organization.objects.order_by("pk")
    )
    for org in organizations.only("pk", "name", "audit_retention_days").iterator():
        cutoff = now - dt.timedelta(days=org.audit_retention_days)
        deleted = _purge_chain(org, cutoff=cutoff)
        if deleted:
            with transaction.atomic():
                record(
                    action=events.AUDIT_PURGED,
                    organization=org,
                    target_label=f"{deleted} events older than {cutoff:%Y-%m-%d %H:%M} UTC",
                    data={"deleted": deleted, "cutoff": cutoff.isoformat()},
                )
        results.append(Purged(org, deleted, cutoff))
    if organization is None:
        days = getattr(settings, "AUDIT_UNSCOPED_RETENTION_DAYS", DEFAULT_UNSCOPED_RETENTION_DAYS)
        cutoff = now - dt.timedelta(days=days)
        results.append(Purged(None, _purge_chain(None, cutoff=cutoff), cutoff))
    return results
