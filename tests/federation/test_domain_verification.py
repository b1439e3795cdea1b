"""Email domain ownership: a provider's domain routes sign-ins only once a DNS TXT record
proves the organization holds it; only a verified claim is exclusive, and public mail
services cannot be claimed at all. DNS is replaced (`federation.dns.txt_records`)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from federation import dns, services, signin
from federation.models import IdentityProvider, ProviderDomain
from tests.conftest import Org, assert_access
from tests.factories import MembershipFactory, OrganizationFactory
from tests.federation.conftest import CLIENT_ID, CLIENT_SECRET, DOMAIN, add_provider


@pytest.fixture
def txt(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The DNS the verification sees: name → TXT strings (nothing else answers)."""
    published: dict[str, list[str]] = {}
    monkeypatch.setattr(dns, "txt_records", lambda name: published.get(name, []))
    return published


def _unverified(org: Org) -> ProviderDomain:
    owner = org.owner.user
    provider = add_provider(org.organization, owner, "https://idp.acme.test", verified=False)
    return provider.domains.get()


def _verify_url(claim: ProviderDomain) -> str:
    provider = claim.provider
    return reverse(
        "federation:domain_verify", args=[provider.organization_id, provider.pk, claim.pk]
    )


def _events(name: str) -> int:
    return AuditEvent.objects.filter(action=name).count()


def test_an_unverified_domain_does_not_route_sign_in(org: Org) -> None:
    _unverified(org)
    assert signin.provider_for_email(f"ada@{DOMAIN}") is None
    page = Client().post(reverse("federation:sso_start"), {"email": f"ada@{DOMAIN}"})
    assert page.status_code == 400
    assert f"No single sign-on is set up for addresses at {DOMAIN}." in page.content.decode()


def test_the_page_shows_the_record_to_add(org: Org, owner_client: Client) -> None:
    claim = _unverified(org)
    page = owner_client.get(reverse("federation:providers", args=[org.organization.pk]))
    content = page.content.decode()
    assert f"_iamportal-challenge.{DOMAIN}" in content
    assert f"iamportal-domain-verification={claim.verification_token}" in content
    assert _verify_url(claim) in content


def test_the_right_record_verifies_and_then_routes(
    org: Org, owner_client: Client, txt: dict[str, list[str]]
) -> None:
    claim = _unverified(org)
    txt[claim.challenge_name] = ["v=spf1 -all", claim.challenge_value]
    page = owner_client.post(_verify_url(claim), follow=True)
    assert f"{DOMAIN} verified" in page.content.decode()
    assert "Verified on" in page.content.decode()
    claim.refresh_from_db()
    assert claim.verified_at is not None
    assert _events("federation.domain.verified") == 1
    assert signin.provider_for_email(f"ada@{DOMAIN}") == claim.provider


@pytest.mark.parametrize("records", [[], ["iamportal-domain-verification=wrong"]])
def test_a_missing_or_wrong_record_is_refused(
    org: Org, owner_client: Client, txt: dict[str, list[str]], records: list[str]
) -> None:
    claim = _unverified(org)
    txt[claim.challenge_name] = records
    response = owner_client.post(_verify_url(claim))
    assert response.status_code == 302
    page = owner_client.get(response["Location"])
    assert f"No TXT record {claim.challenge_name}" in page.content.decode()
    claim.refresh_from_db()
    assert claim.verified_at is None
    event = AuditEvent.objects.get(action="federation.domain.verification_failed")
    assert event.result == "failed"


def test_a_domain_verified_elsewhere_blocks_verification(
    org: Org, owner_client: Client, txt: dict[str, list[str]]
) -> None:
    claim = _unverified(org)
    other = OrganizationFactory()
    owner = MembershipFactory(organization=other, is_owner=True)
    theirs = add_provider(other, owner.user, "https://idp.other.test")  # verified
    txt[claim.challenge_name] = [claim.challenge_value]
    page = owner_client.post(_verify_url(claim), follow=True)
    assert "already verified by another organization" in page.content.decode()
    claim.refresh_from_db()
    assert claim.verified_at is None
    assert _events("federation.domain.verification_failed") == 1
    assert signin.provider_for_email(f"ada@{DOMAIN}") == theirs


def test_an_unverified_claim_elsewhere_does_not_block(
    org: Org, owner_client: Client, txt: dict[str, list[str]]
) -> None:
    other = OrganizationFactory()
    owner = MembershipFactory(organization=other, is_owner=True)
    add_provider(other, owner.user, "https://idp.other.test", verified=False)
    claim = _unverified(org)  # the squatter's claim did not stop this one
    txt[claim.challenge_name] = [claim.challenge_value]
    owner_client.post(_verify_url(claim))
    claim.refresh_from_db()
    assert claim.verified_at is not None
    assert signin.provider_for_email(f"ada@{DOMAIN}") == claim.provider


@pytest.mark.parametrize("domain", ["gmail.com", "Outlook.com", "@proton.me"])
def test_public_mail_domains_are_refused(org: Org, owner_client: Client, domain: str) -> None:
    data = {
        "name": "Acme SSO",
        "issuer": "https://idp.acme.test",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "domains": f"acme.test, {domain}",
        "scopes": "openid email profile",
        "enabled": "on",
    }
    response = owner_client.post(
        reverse("federation:provider_create", args=[org.organization.pk]), data
    )
    assert response.status_code == 400
    assert "is a public mail service" in response.content.decode()
    assert not IdentityProvider.objects.exists()


def test_editing_keeps_verified_claims_and_adds_unverified_ones(org: Org) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    verified_at = provider.domains.get().verified_at
    services.provider_update(
        provider=provider,
        actor=org.owner.user,
        name=provider.name,
        domains=[DOMAIN, "acme.example"],
        accept_provider_mfa=False,
        enabled=True,
        issuer=provider.issuer,
        client_id=provider.client_id,
        scopes=provider.scopes,
    )
    states = dict(provider.domains.values_list("domain", "verified_at"))
    assert states == {DOMAIN: verified_at, "acme.example": None}


def test_only_owners_verify(org: Org, txt: dict[str, list[str]]) -> None:
    claim = _unverified(org)
    txt[claim.challenge_name] = [claim.challenge_value]
    assert_access(org, "post", _verify_url(claim), {"tech": 403, "readonly": 403, "outsider": 404})
    with pytest.raises(PermissionDenied):
        services.domain_verify(claim=claim, actor=org.tech.user)
    claim.refresh_from_db()
    assert claim.verified_at is None


def test_another_organizations_claim_is_404(org: Org, owner_client: Client) -> None:
    other = OrganizationFactory()
    owner = MembershipFactory(organization=other, is_owner=True)
    theirs = add_provider(other, owner.user, "https://idp.other.test", verified=False)
    claim = theirs.domains.get()
    url = reverse("federation:domain_verify", args=[org.organization.pk, theirs.pk, claim.pk])
    assert owner_client.post(url).status_code == 404


def test_txt_records_joins_strings_and_treats_failures_as_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Record:
        strings = (b"iamportal-domain-verification=", b"abc")

    def resolve(name: str, kind: str, lifetime: float) -> list[Record]:
        assert (kind, lifetime) == ("TXT", 3.0)
        if name == "_iamportal-challenge.acme.com":
            return [Record()]
        raise dns.dns.resolver.NXDOMAIN

    monkeypatch.setattr(dns.dns.resolver, "resolve", resolve)
    assert dns.txt_records("_iamportal-challenge.acme.com") == ["iamportal-domain-verification=abc"]
    assert dns.txt_records("_iamportal-challenge.nowhere.com") == []
    assert dns.txt_records("_iamportal-challenge.acme.test") == []  # special-use: no query
