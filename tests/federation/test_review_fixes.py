"""Fixes from the federation security review: providers are managed by owners only, an
owner's or guest's second factor is always the console's, a guest proves an existing
account before a provider links it, a new subject cannot take over a linked account, a
changed issuer needs its secret again, and provider calls are bounded and never redirected."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from federation import crypto, oidc, services
from federation.models import ClaimRule, FederatedIdentity, FederationSettings, IdentityProvider
from organizations.models import Membership
from tests.conftest import Org
from tests.factories import (
    PASSWORD,
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    RuleFactory,
    UserFactory,
)
from tests.federation.conftest import CLIENT_SECRET, add_provider, sign_in_through

pytestmark = pytest.mark.django_db


def _url(org: Org, name: str, *args: object) -> str:
    return reverse(f"federation:{name}", args=[org.organization.pk, *args])


@pytest.fixture
def manager(org: Org) -> Client:
    """A member allowed organization:* (as OrganizationManager grants), not an owner."""
    membership = MembershipFactory(organization=org.organization)
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, actions=["organization:*"])
    PolicyAttachmentFactory(policy=policy, membership=membership, organization=org.organization)
    client = Client()
    client.force_login(membership.user)
    return client


def test_a_non_owner_manager_reads_the_page_without_write_controls(
    org: Org, manager: Client
) -> None:
    add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    page = manager.get(_url(org, "providers"))
    assert page.status_code == 200
    assert b"Acme SSO" in page.content
    for control in (b"Add an identity provider", b"Add rule", b">Edit<", b"sso_required"):
        assert control not in page.content
    owner_page = org.client_for("owner").get(_url(org, "providers"))
    assert b"Add an identity provider" in owner_page.content and b"Add rule" in owner_page.content


def test_a_non_owner_manager_cannot_change_providers_rules_or_sso_only(
    org: Org, manager: Client
) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    group = GroupFactory(organization=org.organization)
    rule = services.claim_rule_add(
        provider=provider,
        actor=org.owner.user,
        claim="groups",
        operator="equals",
        value="x",
        group=group,
    )
    form = {
        "name": "Taken over",
        "issuer": "https://evil.test",
        "client_id": "evil",
        "client_secret": "evil-secret",
        "domains": "acme.test",
        "scopes": "openid email",
        "enabled": "on",
    }
    events_before = AuditEvent.objects.filter(action__startswith="federation.").count()
    assert manager.get(_url(org, "provider_create")).status_code == 403
    created = manager.post(_url(org, "provider_create"), {**form, "domains": "b.test"})
    assert created.status_code == 403
    assert manager.get(_url(org, "provider_update", provider.pk)).status_code == 403
    assert manager.post(_url(org, "provider_update", provider.pk), form).status_code == 403
    assert manager.post(_url(org, "provider_delete", provider.pk)).status_code == 403
    added = manager.post(
        _url(org, "claim_rule_add", provider.pk),
        {"claim": "groups", "operator": "equals", "value": "y", "group": group.name},
    )
    assert added.status_code == 403
    assert manager.post(_url(org, "claim_rule_remove", provider.pk, rule.pk)).status_code == 403
    sso = manager.post(_url(org, "sso_required"), {"sso_required": "on"})
    assert sso.status_code == 403

    provider.refresh_from_db()
    assert IdentityProvider.objects.count() == 1
    assert (provider.name, provider.issuer) == ("Acme SSO", "https://idp.acme.test")
    assert list(ClaimRule.objects.values_list("value", flat=True)) == ["x"]
    assert not FederationSettings.objects.filter(sso_required=True).exists()
    assert AuditEvent.objects.filter(action__startswith="federation.").count() == events_before


def test_changing_the_issuer_or_client_needs_the_secret_again(
    org: Org, owner_client: Client
) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://idp.acme.test")
    form = {
        "name": "Acme SSO",
        "issuer": "https://new-idp.acme.test",
        "client_id": "iamportal",
        "client_secret": "",
        "domains": "acme.test",
        "scopes": "openid email profile",
        "enabled": "on",
    }
    response = owner_client.post(_url(org, "provider_update", provider.pk), form)
    assert response.status_code == 400
    assert b"Enter the client secret again when the issuer or client changes" in response.content
    other_client = owner_client.post(
        _url(org, "provider_update", provider.pk),
        {**form, "issuer": "https://idp.acme.test", "client_id": "another"},
    )
    assert other_client.status_code == 400
    provider.refresh_from_db()
    assert (provider.issuer, provider.client_id) == ("https://idp.acme.test", "iamportal")
    assert crypto.decrypt(provider.client_secret_encrypted) == CLIENT_SECRET

    saved = owner_client.post(
        _url(org, "provider_update", provider.pk), {**form, "client_secret": "new-secret-5678"}
    )
    assert saved.status_code == 302
    provider.refresh_from_db()
    assert provider.issuer == "https://new-idp.acme.test"
    assert crypto.decrypt(provider.client_secret_encrypted) == "new-secret-5678"


def test_an_owner_does_the_consoles_code_even_when_the_provider_mfa_is_accepted(
    org: Org, idp
) -> None:
    add_provider(
        org.organization,
        org.owner.user,
        idp.issuer,
        accept_provider_mfa=True,
        scopes="openid email profile groups",
    )
    owner = MembershipFactory(
        organization=org.organization,
        is_owner=True,
        user__email="mfa@acme.test",
        user__managed_by=org.organization,
    )
    TOTPDevice.objects.create(user=owner.user, name="app", confirmed=True)
    client = Client()
    response = sign_in_through(client, "mfa@acme.test")
    assert response["Location"] == "/accounts/mfa/verify/"
    assert "otp_device_id" not in client.session
    signed_in = AuditEvent.objects.get(action="federation.sso.signed_in")
    assert signed_in.data["provider_mfa"] is False


def test_a_managed_member_may_use_the_provider_mfa(org: Org, idp) -> None:
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
        user__managed_by=org.organization,
    )
    client = Client()
    sign_in_through(client, "mfa@acme.test")
    assert "otp_device_id" in client.session


def test_a_guest_member_proves_their_password_before_the_first_link(org: Org, idp) -> None:
    provider = add_provider(org.organization, org.owner.user, idp.issuer)
    guest = UserFactory(email="guest@acme.test")
    MembershipFactory(organization=org.organization, user=guest)
    client = Client()
    response = sign_in_through(client, "guest@acme.test")
    assert response.status_code == 302 and response["Location"] == "/sso/link/"
    assert "_auth_user_id" not in client.session
    assert not FederatedIdentity.objects.filter(user=guest).exists()

    linked = client.post("/sso/link/", {"password": PASSWORD})
    assert linked.status_code == 302
    assert client.session["_auth_user_id"] == str(guest.pk)
    assert FederatedIdentity.objects.filter(user=guest, provider=provider).exists()
    assert Membership.objects.filter(user=guest, organization=org.organization).count() == 1


def test_another_subject_asserting_a_linked_address_is_refused(org: Org, idp) -> None:
    add_provider(org.organization, org.owner.user, idp.issuer)
    alice = MembershipFactory(
        organization=org.organization,
        user__email="alice@acme.test",
        user__managed_by=org.organization,
    ).user
    assert sign_in_through(Client(), "alice@acme.test").status_code == 302
    assert FederatedIdentity.objects.filter(user=alice).count() == 1

    client = Client()
    response = sign_in_through(client, "alice@acme.test", login="alias@acme.test")
    assert response.status_code == 403
    assert b"linked to another Acme SSO identity" in response.content
    assert "_auth_user_id" not in client.session
    assert FederatedIdentity.objects.filter(user=alice).count() == 1
    refusals = AuditEvent.objects.filter(action="federation.sso.refused")
    assert [event.data["reason"] for event in refusals] == ["subject_changed"]


@contextmanager
def _local_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_trickling_provider_fails_within_the_total_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):  # one byte every 0.1 s: each read is quick
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setattr(oidc, "TIMEOUT_SECONDS", 1)
    with _local_server(Trickle) as base:
        started = time.monotonic()
        with pytest.raises(oidc.ProviderUnavailable, match="took more than 1 s"):
            oidc.fetch_bytes(base + "/metadata")
        assert time.monotonic() - started < 2


def test_the_token_request_does_not_follow_redirects() -> None:
    hits: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(307 if self.path == "/token" else 200)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id_token": "x"}')

        def log_message(self, *args: object) -> None:
            pass

    with _local_server(Redirecting) as base:
        discovery = oidc.Discovery(
            issuer=base,
            authorization_endpoint=base + "/authorize",
            token_endpoint=base + "/token",
            jwks_uri=base + "/jwks",
            userinfo_endpoint="",
        )
        with pytest.raises((oidc.TokenRefused, oidc.ProviderUnavailable)):
            oidc.exchange_code(
                discovery,
                client_id="iamportal",
                client_secret="secret",
                scope="openid",
                redirect_uri="http://testserver/sso/oidc/callback/",
                code="the-code",
                code_verifier="v" * 64,
            )
    assert hits == ["/token"]


@override_settings(SSO_PRIVATE_ADDRESSES=False)
def test_nat64_is_refused_without_telling_the_address(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="federation.oidc"),
        pytest.raises(oidc.ProviderUnavailable) as refused,
    ):
        oidc.check_reachable("https://[64:ff9b::a00:5]/")
    assert "resolves to a private network address" in str(refused.value)
    assert "64:ff9b" not in str(refused.value).split("resolves")[1]
    assert "64:ff9b::a00:5" in caplog.text


def test_a_compressed_answer_is_refused() -> None:
    """Identity is asked for; a decoder could stall a read past the deadline."""

    class Gzipping(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with (
        _local_server(Gzipping) as base,
        pytest.raises(oidc.ProviderUnavailable, match="compressed"),
    ):
        oidc.fetch_bytes(base + "/metadata")
