"""SAML 2.0 providers on the identity providers page: metadata by URL or pasted, the
console's SP details to give the IdP, Test, and editing."""

from __future__ import annotations

import requests
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from federation import crypto
from federation.models import IdentityProvider
from tests.conftest import Org
from tests.federation.saml_idp import SAMLIdP, add_saml_provider


def _url(org: Org, name: str, *args: object) -> str:
    return reverse(f"federation:{name}", args=[org.organization.pk, *args])


def _form(**extra: str) -> dict[str, str]:
    return {
        "kind": "saml",
        "name": "Acme SAML",
        "domains": "acme.test",
        "saml_email_attribute": "email",
        "enabled": "on",
        **extra,
    }


def test_an_owner_adds_a_saml_provider_from_its_metadata_url(
    org: Org, owner_client: Client, saml_idp: SAMLIdP
) -> None:
    response = owner_client.post(
        _url(org, "provider_create"), _form(saml_metadata_url=saml_idp.metadata_url)
    )
    assert response.status_code == 302, response.content[-3000:]
    provider = IdentityProvider.objects.get(organization=org.organization)
    assert provider.kind == "saml" and provider.issuer == saml_idp.metadata_url
    assert "EntityDescriptor" in provider.saml_metadata_xml
    # The console's signing key, made for this provider, is stored encrypted only.
    assert "PRIVATE KEY" not in provider.sp_private_key_encrypted
    assert "PRIVATE KEY" in crypto.decrypt(provider.sp_private_key_encrypted)
    assert "BEGIN CERTIFICATE" in provider.sp_certificate
    page = owner_client.get(_url(org, "providers"))
    content = page.content.decode()
    assert f"http://testserver/sso/saml/{provider.pk}/metadata/" in content
    assert f"http://testserver/sso/saml/{provider.pk}/acs/" in content
    assert "PRIVATE KEY" not in content
    event = AuditEvent.objects.get(action="federation.provider.created")
    assert event.data["kind"] == "saml" and "PRIVATE" not in str(event.data)


def test_pasted_metadata_works_and_bad_metadata_re_renders(
    org: Org, owner_client: Client, saml_idp: SAMLIdP
) -> None:
    bad = owner_client.post(_url(org, "provider_create"), _form(saml_metadata_xml="<not-saml/>"))
    assert bad.status_code == 400
    assert b"not valid SAML metadata" in bad.content or b"exactly one identity" in bad.content
    nothing = owner_client.post(_url(org, "provider_create"), _form())
    assert nothing.status_code == 400 and b"metadata URL, or paste" in nothing.content
    down = owner_client.post(
        _url(org, "provider_create"), _form(saml_metadata_url="http://127.0.0.1:9/metadata")
    )
    assert down.status_code == 400 and b"could not be reached" in down.content
    assert not IdentityProvider.objects.exists()
    xml = requests.get(saml_idp.metadata_url, timeout=5).text
    pasted = owner_client.post(_url(org, "provider_create"), _form(saml_metadata_xml=xml))
    assert pasted.status_code == 302
    provider = IdentityProvider.objects.get()
    assert provider.saml_metadata_url == "" and provider.issuer == saml_idp.metadata_url


def test_the_test_button_reads_the_metadata(
    org: Org, owner_client: Client, saml_idp: SAMLIdP
) -> None:
    provider = add_saml_provider(org.organization, org.owner.user, saml_idp)
    response = owner_client.post(_url(org, "provider_test", provider.pk), follow=True)
    assert b"Metadata works: identity provider" in response.content
    assert AuditEvent.objects.get(action="federation.provider.tested").result == "success"


def test_editing_keeps_the_metadata_unless_new_is_given(
    org: Org, owner_client: Client, saml_idp: SAMLIdP
) -> None:
    provider = add_saml_provider(org.organization, org.owner.user, saml_idp)
    kept = provider.saml_metadata_xml
    form = owner_client.get(_url(org, "provider_update", provider.pk))
    assert b"client_secret" not in form.content and b'name="kind"' not in form.content
    response = owner_client.post(
        _url(org, "provider_update", provider.pk),
        {
            "name": "Renamed",
            "domains": "acme.test",
            "saml_email_attribute": "mail",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.name == "Renamed" and provider.saml_email_attribute == "mail"
    assert provider.saml_metadata_xml == kept
    assert provider.saml_metadata_url == saml_idp.metadata_url
    event = AuditEvent.objects.get(action="federation.provider.updated")
    assert event.data["after"]["saml_email_attribute"] == "mail"
