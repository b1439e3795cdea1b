"""Signing in through a real SAML 2.0 IdP (pysaml2's, tests/federation/saml_idp)."""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from django.urls import reverse
from saml2 import time_util

from accounts.models import User
from audit.models import AuditEvent
from federation import services
from federation.models import FederatedIdentity
from federation.views.sso import SAML_COOKIE
from organizations.models import Membership
from tests.conftest import Org
from tests.factories import PASSWORD, InvoiceFactory, MembershipFactory, UserFactory
from tests.federation.saml_idp import (
    Answer,
    add_saml_provider,
    idp_login,
    post_answer,
    saml_sign_in,
    start_saml,
)

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def provider(org: Org, saml_idp):
    return add_saml_provider(org.organization, org.owner.user, saml_idp)


def test_a_member_signs_in_through_the_idp(org: Org, provider) -> None:
    member = MembershipFactory(
        organization=org.organization,
        user__email="alice@acme.test",
        user__managed_by=org.organization,
    )
    client = Client()
    response = saml_sign_in(client, "alice@acme.test")
    assert response.status_code == 302, response.content[:2000]
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(member.user.pk)
    assert FederatedIdentity.objects.get(provider=provider).subject == "alice@acme.test"
    assert AuditEvent.objects.filter(
        action="federation.sso.signed_in", organization=org.organization
    ).exists()


def _refusals(reason: str) -> list[AuditEvent]:
    return [
        event
        for event in AuditEvent.objects.filter(action="federation.sso.refused")
        if event.data.get("reason") == reason
    ]


def _refused(response, reason: str, client: Client) -> None:
    assert response.status_code in (400, 403), response.content[:1000]
    assert b"Single sign-on refused" in response.content or response.status_code == 400
    assert _refusals(reason), [
        e.data for e in AuditEvent.objects.filter(action="federation.sso.refused")
    ]
    assert "_auth_user_id" not in client.session


def test_an_unknown_address_gets_an_account_just_in_time(org: Org, provider) -> None:
    client = Client()
    response = saml_sign_in(client, "newcomer@acme.test")
    assert response.status_code == 302
    user = User.objects.get(email="newcomer@acme.test")
    assert user.managed_by == org.organization and not user.has_usable_password()
    membership = Membership.objects.get(user=user)
    assert membership.organization == org.organization and membership.status == "active"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert AuditEvent.objects.filter(action="federation.sso.account_created").exists()


def test_a_claim_attribute_puts_the_member_in_a_group_that_grants_billing(
    org: Org, provider, finance_group
) -> None:
    services.claim_rule_add(
        provider=provider,
        actor=org.owner.user,
        claim="groups",
        operator="contains",
        value="finance",
        group=finance_group,
    )
    invoice = InvoiceFactory(organization=org.organization)
    client = Client()
    assert saml_sign_in(client, "finance@acme.test").status_code == 302
    assert finance_group.members.get().user.email == "finance@acme.test"
    applied = AuditEvent.objects.get(action="federation.claim_rule.applied")
    assert applied.data["change"] == "added"
    assert applied.data["claim_value"] == ["finance", "staff"]
    page = client.get(
        reverse("organizations:invoice_detail", args=[org.organization.pk, invoice.pk])
    )
    assert page.status_code == 200 and invoice.number.encode() in page.content


def test_a_guest_account_links_only_after_its_password(org: Org, provider) -> None:
    guest = UserFactory(email="guest@acme.test")
    client = Client()
    response = saml_sign_in(client, "guest@acme.test")
    assert response.status_code == 302 and response["Location"] == "/sso/link/"
    assert "_auth_user_id" not in client.session
    linked = client.post("/sso/link/", {"password": PASSWORD})
    assert linked.status_code == 302
    assert client.session["_auth_user_id"] == str(guest.pk)
    assert FederatedIdentity.objects.filter(user=guest, provider=provider).exists()


def test_accepted_provider_mfa_verifies_the_session(org: Org, saml_idp) -> None:
    add_saml_provider(
        org.organization, org.owner.user, saml_idp, name="MFA SAML", accept_provider_mfa=True
    )
    client = Client()
    assert saml_sign_in(client, "mfa@acme.test").status_code == 302
    assert client.session.get("otp_device_id", "").startswith("federation.providermfadevice/")


def test_an_unsigned_assertion_is_refused_and_audited(org: Org, provider) -> None:
    client = Client()
    _refused(saml_sign_in(client, "alice@acme.test", mode="unsigned"), "unsigned", client)
    assert not User.objects.filter(email="alice@acme.test").exists()


def test_an_assertion_for_another_audience_is_refused(org: Org, provider) -> None:
    client = Client()
    response = saml_sign_in(client, "alice@acme.test", mode="wrong_audience")
    _refused(response, "wrong_audience", client)


def test_an_expired_assertion_is_refused(org: Org, provider, monkeypatch) -> None:
    """The IdP's assertions last 5 minutes: one that arrives an hour later is refused."""
    client = Client()
    answer = idp_login(start_saml(client, "alice@acme.test"), "alice@acme.test")
    now = time_util.utc_now()
    monkeypatch.setattr(time_util, "utc_now", lambda: now + 3600)
    _refused(post_answer(client, answer), "expired", client)


def test_a_replayed_assertion_is_refused(org: Org, provider) -> None:
    MembershipFactory(
        organization=org.organization,
        user__email="alice@acme.test",
        user__managed_by=org.organization,
    )
    client = Client()
    answer = idp_login(start_saml(client, "alice@acme.test"), "alice@acme.test")
    started = client.cookies[SAML_COOKIE].value  # what an attacker holding both would replay
    assert post_answer(client, answer).status_code == 302
    again = Client()
    again.cookies[SAML_COOKIE] = started
    _refused(post_answer(again, answer), "replayed", again)


def test_an_answer_to_another_request_is_refused(org: Org, provider) -> None:
    """InResponseTo names the request this browser started, not another one."""
    client = Client()
    first = start_saml(client, "alice@acme.test")
    answer = idp_login(first, "alice@acme.test")
    start_saml(client, "alice@acme.test")  # a second sign-in replaces the first's cookie
    _refused(post_answer(client, answer), "in_response_to_mismatch", client)


def test_an_answer_without_a_started_sign_in_is_refused(org: Org, provider) -> None:
    answer = idp_login(start_saml(Client(), "alice@acme.test"), "alice@acme.test")
    stranger = Client()
    _refused(post_answer(stranger, answer), "no_pending_sign_in", stranger)


def test_an_email_outside_the_allowed_domains_is_refused(org: Org, provider) -> None:
    client = Client()
    _refused(saml_sign_in(client, "elsewhere@acme.test"), "domain_not_allowed", client)
    assert not User.objects.filter(email="someone@other.test").exists()


def test_the_sp_metadata_is_published(provider) -> None:
    response = Client().get(f"/sso/saml/{provider.pk}/metadata/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/samlmetadata+xml"
    body = response.content.decode()
    assert f'entityID="http://testserver/sso/saml/{provider.pk}/metadata/"' in body
    assert f"http://testserver/sso/saml/{provider.pk}/acs/" in body
    assert "X509Certificate" in body and "PRIVATE" not in body


def test_the_acs_takes_posts_only_and_unknown_providers_are_404(provider) -> None:
    assert Client().get(f"/sso/saml/{provider.pk}/acs/").status_code == 405
    other = "00000000-0000-0000-0000-000000000000"
    assert Client().post(f"/sso/saml/{other}/acs/", {"SAMLResponse": "x"}).status_code == 404
    assert Client().get(f"/sso/saml/{other}/metadata/").status_code == 404


def test_a_tampered_assertion_is_refused(org: Org, provider) -> None:
    """The signature covers the assertion: changing who it names breaks it."""
    MembershipFactory(
        organization=org.organization,
        user__email="mallory@acme.test",
        user__managed_by=org.organization,
    )
    client = Client()
    answer = idp_login(start_saml(client, "alice@acme.test"), "alice@acme.test")
    xml = base64.b64decode(answer.data["SAMLResponse"]).replace(
        b"alice@acme.test", b"mallory@acme.test"
    )
    forged = Answer(answer.acs, {**answer.data, "SAMLResponse": base64.b64encode(xml).decode()})
    _refused(post_answer(client, forged), "bad_signature", client)
