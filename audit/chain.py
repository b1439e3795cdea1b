"""The hash chain: each event's hash covers its content and the previous event's hash.

Pure functions of an event's fields: the models use them when an event is saved
(`AuditEvent.save` seals it under its chain head's lock), the integrity check and the
migrations when they recompute hashes. Nothing here reads the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

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
