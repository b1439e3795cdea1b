from __future__ import annotations

from django.contrib import admin

from organizations.models import BillingContact, Invoice, Membership, Organization, Project
from organizations.services import organization_bump_authz_version
from policies.admin import BumpsAuthzVersion


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0
    fields = ("name", "description", "is_default", "created_at")
    readonly_fields = ("is_default", "created_at")
    show_change_link = True


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "organization"
    extra = 0
    fields = ("user", "is_owner", "status", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(BumpsAuthzVersion):
    list_display = ("name", "id", "authz_version", "created_at")
    search_fields = ("name", "id")
    readonly_fields = ("id", "authz_version", "created_at", "updated_at")
    date_hierarchy = "created_at"
    inlines = [MembershipInline, ProjectInline]

    def _bump(self, obj: Organization) -> None:
        # Inline membership and project edits change who may do what, and where.
        if Organization.objects.filter(pk=obj.pk).exists():
            organization_bump_authz_version(organization=obj)


@admin.register(Membership)
class MembershipAdmin(BumpsAuthzVersion):
    list_display = ("user", "organization", "is_owner", "status", "created_at")
    list_filter = ("is_owner", "status")
    search_fields = ("user__email", "organization__name", "id")
    readonly_fields = ("id", "created_at")
    autocomplete_fields = ("user", "organization")
    list_select_related = ("user", "organization")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "is_default", "created_at")
    list_filter = ("is_default",)
    search_fields = ("name", "organization__name", "id")
    readonly_fields = ("id", "is_default", "created_at", "updated_at")
    autocomplete_fields = ("organization",)
    list_select_related = ("organization",)


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "organization",
        "period_start",
        "period_end",
        "amount",
        "currency",
        "status",
        "due_on",
    )
    list_filter = ("status", "currency", "issued_on")
    search_fields = ("number", "organization__name", "id")
    readonly_fields = ("id", "created_at")
    autocomplete_fields = ("organization",)
    date_hierarchy = "period_start"
    list_select_related = ("organization",)


@admin.register(BillingContact)
class BillingContactAdmin(admin.ModelAdmin):
    list_display = ("organization", "name", "email", "company", "country", "updated_at")
    search_fields = ("organization__name", "name", "email", "company", "vat_number")
    list_filter = ("country",)
    readonly_fields = ("updated_at",)
    autocomplete_fields = ("organization",)
    list_select_related = ("organization",)
