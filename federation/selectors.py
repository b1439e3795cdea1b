from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from federation.models import ClaimRule, FederationSettings, IdentityProvider, ProviderDomain
from organizations.models import Organization


def providers_of(organization: Organization) -> QuerySet[IdentityProvider]:
    """The organization's providers with their domains and claim rules (three queries)."""
    return organization.identity_providers.prefetch_related(
        "domains", Prefetch("claim_rules", ClaimRule.objects.select_related("group"))
    )


def provider_for(*, organization: Organization, provider_id: Any) -> IdentityProvider:
    """The organization's provider; another organization's is a 404."""
    return get_object_or_404(
        IdentityProvider.objects.select_related("organization"),
        organization=organization,
        pk=provider_id,
    )


def claim_rule_for(*, provider: IdentityProvider, rule_id: Any) -> ClaimRule:
    return get_object_or_404(
        ClaimRule.objects.select_related("provider__organization", "group"),
        provider=provider,
        pk=rule_id,
    )


def domain_claim_for(*, provider: IdentityProvider, domain_id: Any) -> ProviderDomain:
    return get_object_or_404(
        ProviderDomain.objects.select_related("provider__organization"),
        provider=provider,
        pk=domain_id,
    )


def sso_required(organization: Organization) -> bool:
    return FederationSettings.objects.filter(organization=organization, sso_required=True).exists()
