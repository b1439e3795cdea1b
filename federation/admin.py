from django.contrib import admin
from django.http import HttpRequest

from audit.admin import AuditedModelAdmin
from federation.models import ClaimRule, FederatedIdentity, IdentityProvider, ProviderDomain


class DomainInline(admin.TabularInline):
    model = ProviderDomain
    extra = 0


@admin.register(IdentityProvider)
class IdentityProviderAdmin(AuditedModelAdmin):
    # The secret stays out of the admin (it is encrypted and never shown).
    list_display = ("name", "organization", "kind", "issuer", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "issuer")
    raw_id_fields = ("organization",)
    fields = ("organization", "kind", "name", "issuer", "client_id", "scopes")
    fields += ("accept_provider_mfa", "enabled")
    inlines = [DomainInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # owners add providers on the organization's page, with their secret


@admin.register(ClaimRule)
class ClaimRuleAdmin(AuditedModelAdmin):
    list_display = ("provider", "claim", "operator", "value", "group")
    raw_id_fields = ("provider", "group", "created_by")


@admin.register(FederatedIdentity)
class FederatedIdentityAdmin(AuditedModelAdmin):
    list_display = ("subject", "provider", "user", "last_sign_in_at")
    raw_id_fields = ("provider", "user")
    search_fields = ("subject",)
