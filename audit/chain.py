"""The hash chain: each event's hash covers its content and the previous event's hash.

`seal` runs inside the inserting transaction: it locks the organization's chain head
(`AuditChain`, one row per organization) so concurrent writers of one organization
append one after the other, and different organizations never wait for each other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from audit.models import AuditChain, AuditEvent
from organizations.models import Organization

# Bump when the hashed fields change; stored implicitly by what `content_hash` covers.
HASH_VERSION = 1


def _normal_ip(ip: str | None) -> str:
    if not ip:
        return ""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return str(ip)


def _normal_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def normal_data(data: Any) -> Any:
    """The JSON value as the database will return it (tuples, UUIDs, dates become JSON)."""
    return json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder))


def content_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over a canonical JSON of the event's content and its previous hash.

    `fields` holds the model's field values (attribute names, e.g. `organization_id`).
    The actor's foreign key is not covered (deleting a user sets it to NULL); its
    `actor_type`/`actor_id`/`actor_label` copies are.
    """
    payload = [
        HASH_VERSION,
        str(fields["organization_id"] or ""),
        int(fields["sequence"]),
        fields["prev_hash"] or "",
        str(fields["public_id"]),
        _normal_time(fields["occurred_at"]),
        fields["action"],
        fields["result"],
        fields["actor_type"] or "",
        fields["actor_id"] or "",
        fields["actor_label"] or "",
        fields["target_type"] or "",
        fields["target_id"] or "",
        fields["target_label"] or "",
        fields["data"],
        _normal_ip(fields["ip"]),
        fields["user_agent"] or "",
        fields["request_id"] or "",
    ]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# The fields `content_hash` reads, for `values()` queries of the verifier.
HASHED_FIELDS = (
    "organization_id",
    "sequence",
    "prev_hash",
    "public_id",
    "occurred_at",
    "action",
    "result",
    "actor_type",
    "actor_id",
    "actor_label",
    "target_type",
    "target_id",
    "target_label",
    "data",
    "ip",
    "user_agent",
    "request_id",
)


def lock_head(organization_id: object) -> AuditChain:
    """The chain head of the organization, locked until the caller's transaction ends.

    The organization row is locked first: services lock it too (membership changes) or
    update it (the authorization version bump) before or after recording, so taking both
    locks in one order everywhere keeps concurrent writers from deadlocking.
    """
    if organization_id:
        list(Organization.objects.select_for_update().filter(pk=organization_id).values("pk"))
    key = AuditChain.key_for(organization_id)
    heads = AuditChain.objects.select_for_update()
    head = heads.filter(key=key).first()
    if head is None:
        # Two first writers may race here: ON CONFLICT DO NOTHING lets both continue.
        AuditChain.objects.bulk_create(
            [AuditChain(key=key, organization_id=organization_id or None)],
            ignore_conflicts=True,
        )
        head = heads.get(key=key)
    return head


def seal(event: AuditEvent) -> None:
    """Give an unsaved event its place in its organization's chain and its hash.

    Must run inside the transaction that saves the event: the head stays locked until
    commit, and the next writer reads the head this one leaves behind.
    """
    head = lock_head(event.organization_id)
    if event.occurred_at is None:
        event.occurred_at = timezone.now()
    event.service = event.action.split(".", 1)[0]
    event.data = normal_data(event.data)
    event.sequence = head.sequence + 1
    event.prev_hash = head.last_hash
    event.hash = content_hash({name: getattr(event, name) for name in HASHED_FIELDS})
    head.sequence, head.last_hash = event.sequence, event.hash
    head.save(update_fields=["sequence", "last_hash"])
