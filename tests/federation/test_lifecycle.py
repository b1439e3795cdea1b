"""A member's whole life through the identity provider (#17, "done when"): created just in
time at their first sign-in through the real OpenID provider, given billing by a claim of
theirs, then deprovisioned through SCIM: their open session ends at once and the provider
cannot sign them in again."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from federation import services
from organizations.models import Membership
from scim.tokens import scim_token_create
from tests.conftest import Org
from tests.factories import InvoiceFactory
from tests.federation.conftest import add_provider, sign_in_through
from tests.scim.conftest import ScimClient, patch_op

EMAIL = "finance@acme.test"  # the test provider's account with groups finance and staff


def test_sign_in_claim_to_billing_then_deprovision_through_scim(
    org: Org, idp, finance_group
) -> None:
    organization = org.organization
    provider = add_provider(
        organization, org.owner.user, idp.issuer, scopes="openid email profile groups"
    )
    services.claim_rule_add(
        provider=provider,
        actor=org.owner.user,
        claim="groups",
        operator="contains",
        value="finance",
        group=finance_group,
    )
    invoice = InvoiceFactory(organization=organization)
    invoice_url = reverse("organizations:invoice_detail", args=[organization.pk, invoice.pk])

    browser = Client()
    assert sign_in_through(browser, EMAIL).status_code == 302
    member = Membership.objects.get(organization=organization, user__email=EMAIL)
    assert member.user.managed_by_id == organization.pk  # created just in time
    assert browser.get(invoice_url).status_code == 200  # billing, through the claim

    scim = ScimClient(
        organization,
        scim_token_create(organization=organization, actor=org.owner.user, name="Entra").value,
    )
    found = scim.get("Users", filter=f'userName eq "{EMAIL}"').json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == str(member.pk)
    disabled = scim.patch(
        f"Users/{member.pk}", patch_op({"op": "Replace", "path": "active", "value": "False"})
    )
    assert disabled.status_code == 200 and disabled.json()["active"] is False

    after = browser.get(invoice_url)
    assert after.status_code == 302 and after["Location"].startswith(reverse("accounts:login"))
    member.refresh_from_db()
    assert member.status == Membership.Status.SUSPENDED
    assert AuditEvent.objects.filter(
        organization=organization, action="iam.user.suspended", actor_type="scim_token"
    ).exists()
    again = Client()
    sign_in_through(again, EMAIL)
    assert "_auth_user_id" not in again.session  # the provider cannot bring them back
