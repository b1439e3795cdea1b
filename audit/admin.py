from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit import events
from audit.models import AuditEvent
from audit.services import record


def _organization_of(obj: Any, *, deleting: bool = False) -> Any:
    """The trail an edit of `obj` lands in. An organization's own deletion goes to the
    trail of events without one: its own trail is deleted with it."""
    from organizations.models import Organization

    if isinstance(obj, Organization):
        return None if deleting else obj
    return getattr(obj, "organization", None)


def _message(message: Any) -> Any:
    # The admin's change message: a list of {"changed": {"fields": [...]}}-style entries.
    return message if isinstance(message, list | str) else str(message)


class AuditedModelAdmin(admin.ModelAdmin):
    """Operators' edits land in the organization's audit trail, in the admin's own
    transaction, next to Django's LogEntry: the trail stays complete whoever changes what."""

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        self._record(request, obj, events.ADMIN_OBJECT_CREATED, _message(message))
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        self._record(request, obj, events.ADMIN_OBJECT_UPDATED, _message(message))
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # Called before the deletion, so each object can still be described.
        for obj in queryset:
            self._record(request, obj, events.ADMIN_OBJECT_DELETED, "", deleting=True)
        return super().log_deletions(request, queryset)

    def _record(
        self,
        request: HttpRequest,
        obj: Any,
        action: events.EventType,
        message: Any,
        *,
        deleting: bool = False,
    ) -> None:
        record(
            action=action,
            organization=_organization_of(obj, deleting=deleting),
            actor=request.user,
            target=obj,
            data={"model": obj._meta.label_lower, "change": message},
            request=request,
        )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only, also for operators."""

    list_display = ("occurred_at", "action", "actor_label", "target_label", "organization", "ip")
    list_filter = ("action", "occurred_at")
    search_fields = ("action", "actor_label", "target_label", "target_id", "public_id", "ip")
    date_hierarchy = "occurred_at"
    list_select_related = ("organization",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
