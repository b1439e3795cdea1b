from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest

from audit.admin import AuditedModelAdmin
from organizations.services.organizations import organization_bump_authz_version
from policies.models import Policy, PolicyAttachment, Rule


class BumpsAuthzVersion(AuditedModelAdmin):
    """Operators' edits change permissions too: invalidate the organization's caches."""

    def _bump(self, obj: Any) -> None:
        if obj.organization_id is not None:
            organization_bump_authz_version(organization=obj.organization)

    @transaction.atomic
    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        self._bump(form.instance)

    @transaction.atomic
    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        self._bump(obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        objects = list(queryset.select_related("organization"))
        super().delete_queryset(request, queryset)
        for obj in objects:
            self._bump(obj)


class RuleInline(admin.TabularInline):
    model = Rule
    extra = 0
    fields = ("position", "effect", "actions", "scope", "projects", "condition")
    filter_horizontal = ("projects",)


@admin.register(Policy)
class PolicyAdmin(BumpsAuthzVersion):
    list_display = ("name", "kind", "organization", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "description", "organization__name", "id")
    readonly_fields = ("id", "created_at", "updated_at")
    autocomplete_fields = ("organization",)
    list_select_related = ("organization",)
    inlines = [RuleInline]

    def has_change_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        # Managed policies come from the action catalogue in code and are synced on migrate.
        if obj is not None and obj.is_managed:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        if obj is not None and obj.is_managed:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(PolicyAttachment)
class PolicyAttachmentAdmin(BumpsAuthzVersion):
    list_display = ("policy", "membership", "organization", "created_at")
    search_fields = ("policy__name", "membership__user__email", "organization__name")
    readonly_fields = ("id", "created_at")
    autocomplete_fields = ("policy", "membership", "organization")
    list_select_related = ("policy", "membership__user", "organization")
