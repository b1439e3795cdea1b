"""TOTP in a real browser: enroll from the secret shown on the page, sign in with the second
step, and an organization that requires MFA sending an un-enrolled member to set it up."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from organizations.models import Membership, Organization
from policies.models import Policy
from tests.browser.helpers import sign_in, sign_up
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.usefixtures("transactional_db")


def _enroll(page: Page) -> pyotp.TOTP:
    """Set up TOTP from the secret the page shows; returns the authenticator."""
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.locator("svg.qr-code")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("Your authenticator app is set up.")).to_be_visible()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    expect(page.locator("#backup-codes li")).to_have_count(10)
    return totp


def test_enroll_totp_sign_out_and_sign_in_with_the_second_step(page: Page) -> None:
    sign_up(page, "Ada Lovelace", "ada@example.com", "analytical-engine-1843", "Analytical Engines")

    page.goto("/accounts/mfa/")
    totp = _enroll(page)
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, "ada@example.com", "analytical-engine-1843")
    expect(page).to_have_url(re.compile(r"/accounts/mfa/verify/$"))
    # The enrollment code is spent (no replay); the next time step's code is within the
    # drift tolerance.
    page.get_by_label("Authentication code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/o/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Analytical Engines")

    page.goto("/accounts/")
    expect(page.get_by_text("This browser")).to_be_visible()
    expect(page.get_by_text("Signing in asks for a code")).to_be_visible()


def test_an_organization_requiring_mfa_sends_an_unenrolled_member_to_set_it_up(
    page: Page,
) -> None:
    organization = OrganizationFactory(name="Strict Co")
    Organization.objects.filter(pk=organization.pk).update(
        mfa_required=True, mfa_required_since=timezone.now() - timedelta(days=10)
    )
    member = MembershipFactory(
        organization=organization, user=UserFactory(email="member@strict.example")
    )
    Membership.objects.filter(pk=member.pk).update(created_at=timezone.now() - timedelta(days=10))
    member.policy_attachments.create(
        policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name="ReadOnlyAccess"),
        organization=organization,
    )

    sign_in(page, "member@strict.example", PASSWORD)
    expect(page.get_by_role("heading", name="Strict Co requires MFA")).to_be_visible()
    page.goto(f"/o/{organization.pk}/projects/")
    expect(page.get_by_role("heading", name="Strict Co requires MFA")).to_be_visible()

    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page).to_have_url(re.compile(r"/accounts/mfa/\?next="))
    _enroll(page)
    page.get_by_role("link", name="I saved them, continue").click()
    expect(page).to_have_url(re.compile(rf"/o/{organization.pk}/projects/$"))
    expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()
