"""Signing in through a real OpenID provider (oidc-provider on loopback)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from federation.models import FederatedIdentity
from organizations.models import Membership
from tests.conftest import Org
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.federation.conftest import (
    CALLBACK,
    add_provider,
    provider_login,
    running_idp,
    sign_in_through,
    start_sso,
)

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def provider(org: Org, idp):
    return add_provider(org.organization, org.owner.user, idp.issuer)


def _refusals(reason: str) -> list[AuditEvent]:
    return [
        event
        for event in AuditEvent.objects.filter(action="federation.sso.refused")
        if event.data.get("reason") == reason
    ]


def test_a_member_signs_in_through_the_provider(org: Org, provider) -> None:
    member = MembershipFactory(
        organization=org.organization,
        user__email="alice@acme.test",
        user__managed_by=org.organization,
    )
    client = Client()
    response = sign_in_through(client, "alice@acme.test")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(member.user.pk)
    assert FederatedIdentity.objects.get(provider=provider).user == member.user
    assert AuditEvent.objects.filter(
        action="federation.sso.signed_in", organization=org.organization
    ).exists()


def test_an_unknown_address_gets_an_account_just_in_time(org: Org, provider) -> None:
    client = Client()
    response = sign_in_through(client, "newcomer@acme.test")
    assert response.status_code == 302
    user = User.objects.get(email="newcomer@acme.test")
    assert user.managed_by == org.organization
    assert not user.has_usable_password()
    membership = Membership.objects.get(user=user)
    assert membership.organization == org.organization and membership.status == "active"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert AuditEvent.objects.filter(action="federation.sso.account_created").exists()


def test_a_guest_account_links_only_after_its_password(org: Org, provider) -> None:
    guest = UserFactory(email="guest@acme.test")
    client = Client()
    response = sign_in_through(client, "guest@acme.test")
    assert response.status_code == 302 and response["Location"] == "/sso/link/"
    assert "_auth_user_id" not in client.session
    assert not Membership.objects.filter(user=guest, organization=org.organization).exists()

    wrong = client.post("/sso/link/", {"password": "not-it"})
    assert wrong.status_code == 400
    assert b"That password is not correct." in wrong.content
    assert not Membership.objects.filter(user=guest, organization=org.organization).exists()

    linked = client.post("/sso/link/", {"password": PASSWORD})
    assert linked.status_code == 302
    assert client.session["_auth_user_id"] == str(guest.pk)
    assert Membership.objects.filter(user=guest, organization=org.organization).exists()
    assert FederatedIdentity.objects.filter(user=guest, provider=provider).exists()
    assert AuditEvent.objects.filter(action="federation.sso.account_linked").exists()


def test_a_member_with_an_authenticator_continues_at_the_code_step(org: Org, provider) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    member = MembershipFactory(
        organization=org.organization,
        user__email="bob@acme.test",
        user__managed_by=org.organization,
    )
    TOTPDevice.objects.create(user=member.user, name="app", confirmed=True)
    client = Client()
    response = sign_in_through(client, "bob@acme.test")
    assert response["Location"] == "/accounts/mfa/verify/"
    assert "_auth_user_id" not in client.session


def test_accepted_provider_mfa_verifies_the_session(org: Org, idp) -> None:
    add_provider(
        org.organization,
        org.owner.user,
        idp.issuer,
        accept_provider_mfa=True,
        scopes="openid email profile groups",
    )
    client = Client()
    response = sign_in_through(client, "mfa@acme.test")
    assert response.status_code == 302
    user = User.objects.get(email="mfa@acme.test")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session.get("otp_device_id", "").startswith("federation.providermfadevice/")


def test_an_unverified_email_is_refused_and_audited(org: Org, provider) -> None:
    response = sign_in_through(Client(), "unverified@acme.test")
    assert response.status_code == 403
    assert b"has not verified the address" in response.content
    assert not User.objects.filter(email="unverified@acme.test").exists()
    assert _refusals("email_unverified")


def test_an_email_outside_the_allowed_domains_is_refused(org: Org, provider) -> None:
    response = sign_in_through(Client(), "elsewhere@acme.test")
    assert response.status_code == 403
    assert b"do not sign in through Acme SSO" in response.content
    assert _refusals("domain_not_allowed")


def test_a_state_mismatch_is_refused_and_audited(org: Org, provider) -> None:
    client = Client()
    callback = provider_login(start_sso(client, "alice@acme.test"), "alice@acme.test")
    forged = callback.replace("state=", "state=x", 1)
    response = client.get(forged)
    assert response.status_code == 400
    assert _refusals("state_mismatch")
    assert "_auth_user_id" not in client.session


def test_a_replayed_callback_is_refused(org: Org, provider) -> None:
    MembershipFactory(
        organization=org.organization,
        user__email="alice@acme.test",
        user__managed_by=org.organization,
    )
    client = Client()
    callback = provider_login(start_sso(client, "alice@acme.test"), "alice@acme.test")
    assert client.get(callback).status_code == 302
    again = Client().get(callback)
    assert again.status_code == 400
    assert _refusals("no_pending_sign_in")


def test_a_nonce_mismatch_is_refused_and_audited(org: Org, provider) -> None:
    client = Client()
    callback = provider_login(start_sso(client, "alice@acme.test"), "alice@acme.test")
    session = client.session
    pending = session["_sso_pending"]
    pending["n"] = "another-nonce"
    session["_sso_pending"] = pending
    session.save()
    response = client.get(callback)
    assert response.status_code == 403
    assert _refusals("wrong_nonce")


def test_a_provider_that_is_down_gives_a_clear_page_and_password_sign_in_works(
    org: Org,
) -> None:
    add_provider(org.organization, org.owner.user, "http://127.0.0.1:9/")
    response = Client().post("/sso/oidc/start/", {"email": "alice@acme.test"})
    assert response.status_code == 503
    assert b"cannot be reached right now" in response.content
    assert b"Password sign-in is not affected" in response.content
    assert _refusals("provider_unavailable")
    # Password sign-in of a member of that organization is untouched.
    client = Client()
    signed = client.post(
        "/accounts/login/", {"username": org.tech.user.email, "password": PASSWORD}
    )
    assert signed.status_code == 302 and client.session["_auth_user_id"] == str(org.tech.user.pk)


def test_an_address_without_a_provider_is_told_so(db: None) -> None:
    response = Client().post("/sso/oidc/start/", {"email": "x@nowhere.test"})
    assert response.status_code == 400
    assert b"No single sign-on is set up for addresses at nowhere.test" in response.content


def test_the_login_page_offers_single_sign_on(db: None) -> None:
    response = Client().get("/accounts/login/")
    assert b"Sign in with single sign-on" in response.content
    assert b'href="/sso/oidc/start/"' in response.content
    onward = Client().get("/accounts/login/?next=/o/x/")
    assert b'href="/sso/oidc/start/?next=/o/x/"' in onward.content
    start = Client().get("/sso/oidc/start/?next=/o/x/")
    assert b'name="next" value="/o/x/"' in start.content


def test_claims_kept_at_userinfo_are_read_there(org: Org) -> None:
    """A provider that keeps the profile out of the ID token (code flow, as the spec has it)."""
    with running_idp(CALLBACK, conform=True) as conforming:
        add_provider(org.organization, org.owner.user, conforming.issuer)
        client = Client()
        response = sign_in_through(client, "userinfo@acme.test")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(email="userinfo@acme.test").pk)


def test_provider_mfa_never_verifies_an_operator(org: Org, idp) -> None:
    add_provider(
        org.organization,
        org.owner.user,
        idp.issuer,
        accept_provider_mfa=True,
        scopes="openid email profile groups",
    )
    MembershipFactory(
        organization=org.organization,
        user__email="mfa@acme.test",
        user__is_staff=True,
        user__managed_by=org.organization,
    )
    client = Client()
    response = sign_in_through(client, "mfa@acme.test")
    assert response.status_code == 302
    assert "otp_device_id" not in client.session
