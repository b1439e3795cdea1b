"""The SCIM settings page: who sees it, owners create a token shown once and stored
hashed, revoke it; every change audited."""

from __future__ import annotations

import hashlib

from django.test import Client

from audit.models import AuditEvent
from scim.models import ScimToken
from scim.tokens import MAX_TOKENS, scim_token_create
from tests.conftest import Org, assert_access
from tests.factories import MembershipFactory, grant
from tests.scim.conftest import ScimClient


def _url(org: Org, suffix: str = "") -> str:
    return f"/o/{org.organization.pk}/settings/scim/{suffix}"


def test_who_sees_the_page(org: Org) -> None:
    assert_access(org, "get", _url(org), {"owner": 200, "outsider": 404})


def test_the_page_shows_the_base_url_and_tokens(org: Org, owner_client: Client) -> None:
    scim_token_create(organization=org.organization, actor=org.owner.user, name="Entra ID")
    page = owner_client.get(_url(org)).content.decode()
    assert f"http://testserver/scim/v2/{org.organization.pk}/" in page
    assert "Entra ID" in page
    assert "Never" in page  # not used yet
    assert "Create token" in page


def test_an_owner_creates_a_token_shown_once(org: Org, owner_client: Client) -> None:
    response = owner_client.post(_url(org, "new/"), {"name": "Okta"})
    assert response.status_code == 200
    token = ScimToken.objects.get(organization=org.organization)
    page = response.content.decode()
    start = page.index('<code id="scim-token">') + len('<code id="scim-token">')
    value = page[start : page.index("</code>", start)]
    prefix, secret = value.split(".")
    assert prefix == token.prefix
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in owner_client.get(_url(org)).content.decode()
    event = AuditEvent.objects.get(action="scim.token.created")
    assert event.actor_user == org.owner.user
    assert secret not in str(event.data)
    # The value works, and the page then shows its last use.
    assert ScimClient(org.organization, value).get("Users").status_code == 200
    assert "Never" not in owner_client.get(_url(org)).content.decode()


def test_a_name_is_required(org: Org, owner_client: Client) -> None:
    response = owner_client.post(_url(org, "new/"), {"name": "  "})
    assert response.status_code == 400
    assert not ScimToken.objects.exists()


def test_tokens_per_organization_are_bounded(org: Org, owner_client: Client) -> None:
    for n in range(MAX_TOKENS):
        scim_token_create(organization=org.organization, actor=org.owner.user, name=f"t{n}")
    response = owner_client.post(_url(org, "new/"), {"name": "one more"})
    assert response.status_code == 400
    assert ScimToken.objects.count() == MAX_TOKENS


def test_only_owners_create_or_revoke(org: Org) -> None:
    grant(org.tech, actions=["organization:security:update", "organization:security:read"])
    created = scim_token_create(organization=org.organization, actor=org.owner.user, name="x")
    tech = org.client_for("tech")
    assert tech.post(_url(org, "new/"), {"name": "Okta"}).status_code == 403
    assert tech.post(_url(org, "revoke/"), {"token": created.token.pk}).status_code == 403
    assert "Create token" not in tech.get(_url(org)).content.decode()
    assert ScimToken.objects.count() == 1
    assert org.client_for("outsider").post(_url(org, "new/"), {"name": "x"}).status_code == 404


def test_an_owner_revokes_a_token(org: Org, owner_client: Client) -> None:
    created = scim_token_create(organization=org.organization, actor=org.owner.user, name="Okta")
    response = owner_client.post(_url(org, "revoke/"), {"token": created.token.pk})
    assert response.status_code == 302
    assert not ScimToken.objects.exists()
    assert AuditEvent.objects.filter(action="scim.token.revoked").exists()
    assert ScimClient(org.organization, created.value).get("Users").status_code == 401


def test_another_organizations_token_cannot_be_revoked_here(org: Org, owner_client: Client) -> None:

    other = MembershipFactory(is_owner=True)
    theirs = scim_token_create(organization=other.organization, actor=other.user, name="x")
    assert owner_client.post(_url(org, "revoke/"), {"token": theirs.token.pk}).status_code == 404
    assert ScimToken.objects.filter(pk=theirs.token.pk).exists()
    assert owner_client.post(_url(org, "revoke/"), {"token": "junk"}).status_code == 404


def test_the_settings_index_links_to_the_page_for_security_readers(
    org: Org, owner_client: Client
) -> None:
    index = f"/o/{org.organization.pk}/settings/"
    assert _url(org) in owner_client.get(index).content.decode()
    grant(org.billing, actions=["organization:organization:update"])
    grant(org.tech, actions=["organization:organization:update", "organization:security:read"])
    page = org.client_for("billing").get(index)
    assert page.status_code == 200
    assert _url(org) not in page.content.decode()
    assert _url(org) in org.client_for("tech").get(index).content.decode()
