from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


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
