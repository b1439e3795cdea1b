"""A person finds their own two-step verification from any organization page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import sign_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_from_the_dashboard_a_user_finds_their_two_step_verification(page: Page) -> None:
    membership = MembershipFactory(
        is_owner=True,
        organization__name="Analytical Engines",
        user=UserFactory(email="ada@example.com"),
    )
    sign_in(page, "ada@example.com")
    expect(page).to_have_url(re.compile(rf"/o/{membership.organization_id}/$"))

    # The organization's settings and the person's own are told apart.
    sidebar = page.get_by_role("navigation", name="Organization")
    expect(sidebar.get_by_role("link", name="Organization security")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Two-step verification")).to_have_count(0)

    page.get_by_text("Your account").click()
    page.get_by_role("link", name="Two-step verification").click()
    expect(page).to_have_url(re.compile(r"/accounts/mfa/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-step verification")
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
