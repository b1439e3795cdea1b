from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import transaction

from accounts.models import User, UserSession
from audit.admin import AuditedModelAdmin
from organizations.models import Membership, Organization
from organizations.services.organizations import organization_bump_authz_version


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    fields = ("organization", "is_owner", "status", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("organization",)


@admin.register(User)
class UserAdmin(AuditedModelAdmin, BaseUserAdmin):
    add_form = UserCreationForm
    form = UserEditForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("email", "full_name", "id")
    readonly_fields = ("id", "date_joined", "last_login")
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("date_joined", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        # Deactivating the account or editing its memberships inline changes what it may
        # do in each of its organizations (those it leaves here included): decisions and
        # the principals cached for them (policies.authz) move on with a new version.
        user = form.instance
        before = set(Membership.objects.filter(user=user).values_list("organization_id", flat=True))
        super().save_related(request, form, formsets, change)
        after = set(Membership.objects.filter(user=user).values_list("organization_id", flat=True))
        _bump(list(Organization.objects.filter(pk__in=before | after)))

    # Deleting accounts removes their memberships and keys in every organization.
    @transaction.atomic
    def delete_model(self, request: Any, obj: Any) -> None:
        organizations = _organizations_of(User.objects.filter(pk=obj.pk))
        super().delete_model(request, obj)
        _bump(organizations)

    @transaction.atomic
    def delete_queryset(self, request: Any, queryset: Any) -> None:
        organizations = _organizations_of(queryset)
        super().delete_queryset(request, queryset)
        _bump(organizations)


@admin.register(UserSession)
class UserSessionAdmin(AuditedModelAdmin):
    list_display = ("user", "ip", "device", "created_at", "last_seen_at")
    search_fields = ("user__email", "ip")
    list_select_related = ("user",)
    readonly_fields = ("user", "ip", "user_agent", "created_at", "last_seen_at")
    exclude = ("session_key",)

    def has_add_permission(self, request: object) -> bool:
        return False


def _organizations_of(users: Any) -> list[Organization]:
    return list(Organization.objects.filter(memberships__user__in=users).distinct())


def _bump(organizations: list[Organization]) -> None:
    for organization in organizations:
        organization_bump_authz_version(organization=organization)
