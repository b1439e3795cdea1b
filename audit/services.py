"""The one function that records audit events, and the helpers its callers use."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from iamportal.request import client_ip, client_user_agent, request_id

REDACTED = "[redacted]"


# Keys whose values are never written to the trail, at any depth of `data`: any key
# containing one of these words, or with one of the parts (split on "_", "-", ".").
# The public `access_key` of an API key is no secret and stays.
_SECRET_WORDS = (
    "password",
    "passphrase",
    "passcode",
    "secret",
    "token",
    "credential",
    "private_key",
    "cookie",
    "backup_code",
)


_SECRET_PARTS = frozenset({"hash", "digest", "otp", "totp", "pin", "cvv", "signature"})


def is_secret_key(key: object) -> bool:
    name = str(key).lower()
    if any(word in name for word in _SECRET_WORDS):
        return True
    return not _SECRET_PARTS.isdisjoint(re.split(r"[_\-.]", name))


# Denials of one principal for one permission are recorded at most once per window:
# a script looping on a forbidden page cannot flood the trail.
DENIAL_WINDOW = dt.timedelta(minutes=1)


def redact(data: Any) -> Any:
    """`data` with the value of every secret-looking key replaced, recursively."""
    if isinstance(data, dict):
        return {
            key: REDACTED if is_secret_key(key) else redact(value) for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact(value) for value in data]
    return data


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The changed fields only: `{"before": {field: old}, "after": {field: new}}`.

    A field present on one side only counts as changed (None on the other side).
    """
    changed = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    return {
        "before": {key: before.get(key) for key in changed},
        "after": {key: after.get(key) for key in changed},
    }


@dataclass(frozen=True)
class AuditActor:
    """A credential the system writes for (a SCIM token), named as the actor. `type` is
    an `AuditEvent.ActorType`; `user` is who vouches for it, as an API key's bearer."""

    type: str
    id: str
    label: str
    user: Any = None


def _actor_fields(actor: Any, actor_label: str) -> dict[str, Any]:
    """Who acted: a user (or their membership), an application, an API key or another
    credential (`AuditActor`)."""
    from organizations.models import APIKey, Application, Membership

    if isinstance(actor, AuditActor):
        return {
            "actor_user": actor.user,
            "actor_type": actor.type,
            "actor_id": actor.id,
            "actor_label": actor_label or actor.label,
        }
    if isinstance(actor, Membership):
        actor = actor.user
    if isinstance(actor, APIKey):
        bearer_user = actor.bearer_membership.user if actor.bearer_membership_id else None
        return {
            "actor_user": bearer_user,
            "actor_type": AuditEvent.ActorType.API_KEY,
            "actor_id": str(actor.pk),
            "actor_label": actor_label or f"API key {actor.access_key}",
        }
    if isinstance(actor, Application):
        return {
            "actor_user": None,
            "actor_type": AuditEvent.ActorType.APPLICATION,
            "actor_id": str(actor.pk),
            "actor_label": actor_label or actor.name,
        }
    if actor is not None and getattr(actor, "is_authenticated", False):
        return {
            "actor_user": actor,
            "actor_type": AuditEvent.ActorType.USER,
            "actor_id": str(actor.pk),
            "actor_label": actor_label or str(actor),
        }
    return {"actor_user": None, "actor_type": "", "actor_id": "", "actor_label": actor_label}


def record(
    *,
    action: events.EventType,
    organization: Any = None,
    actor: Any = None,
    target: models.Model | None = None,
    target_label: str = "",
    data: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    result: str | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Append one event; call it inside the transaction of the change it describes.

    `actor` is a user, membership, application, API key or `AuditActor` (None or
    anonymous: the system). `result` defaults to the event type's (`success`, `denied`,
    `failed`). Secret-looking keys of `data` are redacted; `diff()` builds before/after
    values.
    """
    result = result or action.result
    if result not in events.RESULTS:
        raise ValueError(f"Unknown audit result {result!r}.")
    # A change made through the API is the key's, whoever its bearer is: the services
    # name the bearer as `actor`, the request knows the key (iamportal.api).
    api_key = getattr(request, "api_key", None) if request is not None else None
    actor_fields = _actor_fields(api_key or actor, actor_label)
    actor_fields["actor_label"] = actor_fields["actor_label"][:254]  # given or str(actor)
    event = AuditEvent(
        organization=organization,
        action=action.name,
        result=result,
        **actor_fields,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk)[:64] if target is not None else "",
        target_label=(target_label or (str(target) if target is not None else ""))[:254],
        data=redact(data or {}),
        ip=client_ip(request),
        user_agent=client_user_agent(request),
        request_id=request_id(request),
    )
    event.save()
    return event


def _denied_recently(*, organization: Any, actor_fields: dict[str, Any], permission: str) -> bool:
    since = timezone.now() - DENIAL_WINDOW
    return AuditEvent.objects.filter(
        organization=organization,
        actor_type=actor_fields["actor_type"],
        actor_id=actor_fields["actor_id"],
        occurred_at__gte=since,
        action=events.ACCESS_DENIED.name,
        target_label=permission,
    ).exists()


def first_in_window(key: str) -> bool:
    """True the first time `key` is seen within `DENIAL_WINDOW`: repeated events (denials,
    refused sign-ins of a locked account) are recorded once a window. Per process with a
    local cache, shared with a shared one; callers add a database check where the limit
    must hold across processes."""
    return cache.add(f"audit:once:{key}", 1, timeout=int(DENIAL_WINDOW.total_seconds()))


def recorded_recently(*, action: events.EventType, target_label: str) -> bool:
    """Was `action` about `target_label` recorded within `DENIAL_WINDOW`, by any process?"""
    since = timezone.now() - DENIAL_WINDOW
    return AuditEvent.objects.filter(
        action=action.name, target_label=target_label, occurred_at__gte=since
    ).exists()


def record_access_denied(
    *,
    organization: Any,
    actor: Any,
    permission: str,
    data: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent | None:
    """Record a denied request, at most once per principal, permission and minute.

    The cache answers repeats without a query in this process; the database check makes
    the limit hold across processes. Returns None when the denial was not recorded.
    """
    actor_fields = _actor_fields(actor, "")
    org_key = getattr(organization, "pk", "") or ""
    principal_key = f"{actor_fields['actor_type']}:{actor_fields['actor_id']}"
    if not actor_fields["actor_type"]:
        principal_key = f"ip:{client_ip(request) or ''}"  # anonymous: limit per address
    if not first_in_window(f"denied:{org_key}:{principal_key}:{permission}"):
        return None
    if actor_fields["actor_type"] and _denied_recently(
        organization=organization, actor_fields=actor_fields, permission=permission
    ):
        return None
    return record(
        action=events.ACCESS_DENIED,
        organization=organization,
        actor=actor,
        target_label=permission,
        data=data,
        request=request,
    )
