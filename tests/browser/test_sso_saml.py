"""SAML single sign-on in Chromium, through the test IdP's own login page (pysaml2's IdP,
tests/federation/saml_idp) and its auto-posting answer, back to the console's ACS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from federation import services
from federation.models import FederatedIdentity
from tests.conftest import Org
from tests.factories import InvoiceFactory
from tests.federation.conftest import finance_group  # noqa: F401 (a fixture)
from tests.federation.saml_idp import SAMLIdP, add_saml_provider, running_saml_idp


@pytest.fixture(scope="session")
def browser_saml_idp() -> Iterator[SAMLIdP]:
    with running_saml_idp() as started:
        yield started


@pytest.mark.django_db(transaction=True)
def test_a_new_person_signs_in_through_the_idps_login_page_and_reads_invoices(
    page: Page,
    org: Org,
    browser_saml_idp: SAMLIdP,
    live_server: object,
    finance_group,  # noqa: F811
) -> None:
    provider = add_saml_provider(
        org.organization, org.owner.user, browser_saml_idp, base=live_server.url
    )
    services.claim_rule_add(
        provider=provider,
        actor=org.owner.user,
        claim="groups",
        operator="contains",
        value="finance",
        group=finance_group,
    )
    invoice = InvoiceFactory(organization=org.organization)
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    page.get_by_label("Work email").fill("finance@acme.test")
    page.get_by_role("button", name="Continue with single sign-on").click()
    # The IdP's own login form, on its own origin (another site than the console's).
    page.wait_for_url(f"{browser_saml_idp.base}/**")
    page.get_by_label("Username").fill("finance@acme.test")
    page.get_by_label("Password").fill("anything")
    page.get_by_role("button", name="Sign in").click()
    # Its answer page posts the signed response to the ACS by itself.
    page.wait_for_url(f"**/o/{org.organization.pk}/**")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert FederatedIdentity.objects.get(subject="finance@acme.test").provider == provider
    page.goto(reverse("organizations:invoice_detail", args=[org.organization.pk, invoice.pk]))
    expect(page.get_by_text(invoice.number).first).to_be_visible()
