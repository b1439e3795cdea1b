"""The organization's identity providers page: owners add, test, edit and remove
providers and claim rules; secrets are encrypted and never shown again."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import reverse

from audit.models import AuditEvent
from federation import crypto
from federation.models import ClaimRule, FederationSettings, IdentityProvider
from tests.conftest import Org, assert_access
from tests.factories import GroupFactory, MembershipFactory, OrganizationFactory
from tests.federation.conftest import CLIENT_ID, CLIENT_SECRET, add_provider


def _url(org: Org, name: str, *args: object) -> str:
    return reverse(f"federation:{name}", args=[org.organization.pk, *args])


def _form(issuer: str, **extra: str) -> dict[str, str]:
    return {
        "name": "Acme SSO",
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "domains": "acme.test, Acme.Example",
        "scopes": "openid email profile",
        "enabled": "on",
        **extra,
    }


def test_an_owner_adds_a_provider_whose_secret_is_encrypted(org: Org, owner_client: Client) -> None:
    response = owner_client.post(_url(org, "provider_create"), _form("https://idp.acme.test"))
    assert response.status_code == 302
    provider = IdentityProvider.objects.get(organization=org.organization)
    assert CLIENT_SECRET not in provider.client_secret_encrypted
    assert crypto.decrypt(provider.client_secret_encrypted) == CLIENT_SECRET
    assert sorted(provider.domains.values_list("domain", flat=True)) == [
        "acme.example",
        "acme.test",
    ]
    page = owner_client.get(_url(org, "providers"))
    assert page.status_code == 200 and b"Acme SSO" in page.content
    assert CLIENT_SECRET.encode() not in page.content
    edit = owner_client.get(_url(org, "provider_update", provider.pk))
    assert CLIENT_SECRET.encode() not in edit.content
    event = AuditEvent.objects.get(action="federation.provider.created")
    assert CLIENT_SECRET not in str(event.data)


def test_bad_input_re_renders_the_form_and_saves_nothing(org: Org, owner_client: Client) -> None:
    response = owner_client.post(
        _url(org, "provider_create"),
        _form("http://idp.acme.test", scopes="email", domains="not a domain"),
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "must start with https://" in content
    assert not IdentityProvider.objects.exists()


def test_a_verified_domain_belongs_to_one_provider_across_the_instance(org: Org) -> None:
    other = OrganizationFactory()
    owner = MembershipFactory(organization=other, is_owner=True)
    add_provider(other, owner.user, "https://idp.other.test")
    client = org.client_for("owner")
    response = client.post(_url(org, "provider_create"), _form("https://idp.acme.test"))
    assert response.status_code == 400
    assert b"Already verified by another organization: acme.test" in response.content


def test_editing_keeps_the_secret_unless_a_new_one_is_given(org: Org, owner_client: Client) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    data = _form("https://idp.acme.test", name="Renamed", client_secret="")
    assert owner_client.post(_url(org, "provider_update", provider.pk), data).status_code == 302
    provider.refresh_from_db()
    assert provider.name == "Renamed"
    assert crypto.decrypt(provider.client_secret_encrypted) == CLIENT_SECRET
    event = AuditEvent.objects.get(action="federation.provider.updated")
    assert event.data["after"]["name"] == "Renamed" and "secret_replaced" not in event.data


def test_the_test_button_reports_discovery(org: Org, owner_client: Client, idp) -> None:
    provider = add_provider(org.organization, org.owner.user, idp.issuer)
    response = owner_client.post(_url(org, "provider_test", provider.pk), follow=True)
    assert b"Discovery works" in response.content
    down = add_provider(
        org.organization, org.owner.user, "http://127.0.0.1:9", name="Down", domains=["x.test"]
    )
    response = owner_client.post(_url(org, "provider_test", down.pk), follow=True)
    assert b"could not be reached" in response.content
    results = set(
        AuditEvent.objects.filter(action="federation.provider.tested").values_list(
            "result", flat=True
        )
    )
    assert results == {"success", "failed"}


def test_claim_rules_and_sso_only_are_managed_on_the_page(org: Org, owner_client: Client) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    GroupFactory(organization=org.organization, name="finance")
    data = {"claim": "groups", "operator": "contains", "value": "finance", "group": "finance"}
    assert owner_client.post(_url(org, "claim_rule_add", provider.pk), data).status_code == 302
    rule = ClaimRule.objects.get()
    missing = {**data, "group": "nope"}
    page = owner_client.post(_url(org, "claim_rule_add", provider.pk), missing, follow=True)
    assert b"No group of this organization has this name." in page.content
    assert ClaimRule.objects.count() == 1
    owner_client.post(_url(org, "claim_rule_remove", provider.pk, rule.pk))
    assert not ClaimRule.objects.exists()

    owner_client.post(_url(org, "sso_required"), {"sso_required": "on"})
    assert FederationSettings.objects.get(organization=org.organization).sso_required
    assert AuditEvent.objects.filter(action="federation.sso.required_updated").exists()

    owner_client.post(_url(org, "sso_required"), {})
    owner_client.post(_url(org, "provider_delete", provider.pk))
    assert not IdentityProvider.objects.exists()
    assert AuditEvent.objects.filter(action="federation.provider.deleted").exists()


def test_sso_only_needs_an_enabled_provider(org: Org, owner_client: Client) -> None:
    page = owner_client.post(_url(org, "sso_required"), {"sso_required": "on"}, follow=True)
    assert b"Add and enable an identity provider before requiring it." in page.content
    assert not FederationSettings.objects.filter(sso_required=True).exists()


def test_who_may_see_and_change_providers(org: Org) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    assert_access(
        org, "get", _url(org, "providers"), {"owner": 200, "billing": 403, "outsider": 404}
    )
    assert_access(
        org,
        "post",
        _url(org, "provider_delete", provider.pk),
        {"tech": 403, "readonly": 403, "outsider": 404},
    )
    assert IdentityProvider.objects.exists()


def test_another_organizations_provider_is_404(org: Org, owner_client: Client) -> None:
    other = OrganizationFactory()
    owner = MembershipFactory(organization=other, is_owner=True)
    theirs = add_provider(other, owner.user, "https://idp.other.test", domains=["other.test"])
    assert owner_client.get(_url(org, "provider_update", theirs.pk)).status_code == 404
    assert owner_client.post(_url(org, "provider_delete", theirs.pk)).status_code == 404
    assert IdentityProvider.objects.filter(pk=theirs.pk).exists()


def test_writes_need_a_fresh_confirmation(org: Org) -> None:
    client = org.client_for("owner")
    session = client.session
    session.pop("_sudo", None)
    session.save()
    response = client.post(_url(org, "provider_create"), _form("https://idp.acme.test"))
    assert response.status_code == 302 and "/accounts/confirm/" in response["Location"]
    assert not IdentityProvider.objects.exists()


def test_the_page_stays_flat_as_rules_grow(
    org: Org, owner_client: Client, django_assert_max_num_queries
) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    group = GroupFactory(organization=org.organization)

    def rules(count: int) -> None:
        for index in range(count):
            ClaimRule.objects.create(
                provider=provider, claim="groups", value=f"v{index}", group=group
            )

    rules(1)
    with django_assert_max_num_queries(40) as small:
        owner_client.get(_url(org, "providers"))
    rules(30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        owner_client.get(_url(org, "providers"))


@override_settings(IAMPORTAL_SECRETS_KEY="")
def test_without_a_secrets_key_adding_a_provider_says_so_and_saves_nothing(
    org: Org, owner_client: Client
) -> None:
    response = owner_client.post(_url(org, "provider_create"), _form("https://idp.acme.test"))
    assert response.status_code == 400
    assert b"its operator must set IAMPORTAL_SECRETS_KEY" in response.content
    assert not IdentityProvider.objects.filter(organization=org.organization).exists()
    with pytest.raises(ImproperlyConfigured, match="IAMPORTAL_SECRETS_KEY is not set"):
        crypto.decrypt("stored")  # reading one back is the operator's configuration error


def test_the_last_provider_of_an_sso_only_organization_stays(
    org: Org, owner_client: Client
) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    owner_client.post(_url(org, "sso_required"), {"sso_required": "on"})
    page = owner_client.post(_url(org, "provider_delete", provider.pk), follow=True)
    assert b"turn that off before disabling or removing" in page.content
    disable = _form("https://idp.acme.test", client_secret="")
    del disable["enabled"]
    response = owner_client.post(_url(org, "provider_update", provider.pk), disable)
    assert response.status_code == 400
    provider.refresh_from_db()
    assert provider.enabled
