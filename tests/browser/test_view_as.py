"""View as (#16): the owner opens the console as the billing user, sees billing's console
under a read-only banner, and stops."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from audit.models import AuditEvent
from policies.models import Policy
from tests.browser.helpers import sign_in
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_the_owner_views_the_console_as_the_billing_user(
    browser: Browser, live_server: object
) -> None:
    organization = OrganizationFactory(name="Viewed Co")
    MembershipFactory(
        organization=organization, is_owner=True, user=UserFactory(email="olga@viewed.example")
    )
    billing = MembershipFactory(
        organization=organization, user=UserFactory(email="bill@viewed.example")
    )
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")
    billing.policy_attachments.create(policy=policy, organization=organization)

    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, "olga@viewed.example")
    page.goto(f"/o/{organization.pk}/iam/users/{billing.pk}/")
    page.get_by_role("button", name="View as").click()

    expect(page).to_have_url(re.compile(rf"/o/{organization.pk}/$"))
    banner = page.get_by_role("status").filter(has_text="Viewing as")
    expect(banner).to_contain_text("Viewing as bill@viewed.example (read-only)")
    nav = page.get_by_role("navigation", name="Organization")
    expect(nav.get_by_role("link", name="Billing")).to_be_visible()
    expect(nav.get_by_role("link", name="IAM")).to_have_count(0)
    expect(nav.get_by_role("link", name="Projects")).to_have_count(0)

    nav.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(banner).to_be_visible()

    page.get_by_role("button", name="Stop").click()
    expect(page).to_have_url(re.compile(rf"/iam/users/{billing.pk}/$"))
    expect(page.get_by_text("Viewing as bill@viewed.example (read-only)")).to_have_count(0)
    expect(nav.get_by_role("link", name="IAM")).to_be_visible()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"iam.view_as.started", "iam.view_as.stopped"} <= actions
    context.close()
    assert errors == [], errors
