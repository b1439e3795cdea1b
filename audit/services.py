"""The one function that records audit events."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from audit import events
from audit.models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address; a proxy's X-Forwarded-For is trusted only behind one (settings)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    *,
    action: events.EventType,
    organization: Any = None,
    actor: Any = None,
    target: models.Model | None = None,
    target_label: str = "",
    data: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one event; call it inside the transaction of the change it describes."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        organization=organization,
        occurred_at=timezone.now(),
        action=action.name,
        actor_user=user,
        actor_label=str(user) if user else "",
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=target_label or (str(target) if target is not None else ""),
        data=data or {},
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:512] if request else ""),
        request_id=(request.META.get("HTTP_X_REQUEST_ID", "")[:64] if request else ""),
    )
