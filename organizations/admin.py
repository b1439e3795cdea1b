from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from audit.admin import AuditedModelAdmin
from organizations.forms.organizations import OrganizationNameForm
from organizations.models import (
    APIKey,
    Application,
    BillingContact,
    Group,
    Invitation,
    Invoice,
    Membership,
    Organization,
    Project,
)
from organizations.services.organizations import organization_bump_authz_version
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
    form = OrganizationNameForm
    list_display = ("name", "id", "authz_version", "created_at")
    search_fields = ("name", "id")
    readonly_fields = ("id", "authz_version", "created_at", "updated_at")
    date_hierarchy = "created_at"
    inlines = [MembershipInline, ProjectInline]

    def _bump(self, obj: Organization) -> None:
        # Inline membership and project edits change who may do what, and where; a deleted
        # organization's keys are dropped from every process's cache all the same.
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
class ProjectAdmin(AuditedModelAdmin):
    list_display = ("name", "organization", "is_default", "created_at")
    list_filter = ("is_default",)
    search_fields = ("name", "organization__name", "id")
    readonly_fields = ("id", "is_default", "created_at", "updated_at")
    autocomplete_fields = ("organization",)
    list_select_related = ("organization",)


@admin.register(Invoice)
class InvoiceAdmin(AuditedModelAdmin):
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
class BillingContactAdmin(AuditedModelAdmin):
    list_display = ("organization", "name", "email", "company", "country", "updated_at")
    search_fields = ("organization__name", "name", "email", "company", "vat_number")
    list_filter = ("country",)
    readonly_fields = ("updated_at",)
    autocomplete_fields = ("organization",)
    list_select_related = ("organization",)


@admin.register(Group)
class GroupAdmin(BumpsAuthzVersion):
    list_display = ("name", "organization", "created_at")
    search_fields = ("name", "organization__name", "id")
    readonly_fields = ("id", "created_at", "updated_at")
    autocomplete_fields = ("organization",)
    filter_horizontal = ("members", "applications")
    list_select_related = ("organization",)


@admin.register(Application)
class ApplicationAdmin(BumpsAuthzVersion):
    list_display = ("name", "organization", "created_by", "created_at")
    search_fields = ("name", "organization__name", "id")
    readonly_fields = ("id", "created_by", "created_at", "updated_at")
    autocomplete_fields = ("organization",)
    list_select_related = ("organization", "created_by")


@admin.register(APIKey)
class APIKeyAdmin(BumpsAuthzVersion):
    """Keys are created in the console, where the secret is shown once; operators can
    inspect and revoke (delete) them here, never read or set a secret. A deletion bumps
    the version, which drops the key from every process's cache."""

    list_display = ("access_key", "organization", "bearer", "expires_at", "last_used_at")
    search_fields = ("access_key", "organization__name", "description", "id")
    list_filter = ("expires_at",)
    readonly_fields = [f.name for f in APIKey._meta.fields]
    list_select_related = ("organization", "bearer_membership__user", "bearer_application")

    @admin.display(description="bearer")
    def bearer(self, obj: APIKey) -> str:
        return str(obj.bearer_application or obj.bearer_membership.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(AuditedModelAdmin):
    """Invitations are sent from the console (the token exists only in the email)."""

    list_display = ("email", "organization", "role", "status", "expires_at", "created_at")
    list_filter = ("status", "role")
    search_fields = ("email", "organization__name", "id")
    readonly_fields = [f.name for f in Invitation._meta.fields]
    list_select_related = ("organization",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
