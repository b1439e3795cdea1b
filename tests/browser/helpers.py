"""Steps and people browser tests share: signing up, signing in, an IAM manager."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from organizations.models import Membership
from policies.models import Policy
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory


def sign_up(page: Page, name: str, email: str, password: str, organization: str) -> None:
    """Create an account and its organization; lands on the new organization's dashboard."""
    page.goto("/accounts/signup/")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Organization name").fill(organization)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/o/[0-9a-f-]{36}/$"))


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """The password step of signing in (an enrolled account goes on to the code step)."""
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def iam_manager(organization_name: str, email: str) -> Membership:
    """A member of a new organization (which has an owner) holding the managed IAMManager
    policy: an IAM administrator whom the guardrails and the delegation ceiling bind."""
    organization = OrganizationFactory(name=organization_name)
    MembershipFactory(organization=organization, is_owner=True)
    manager = MembershipFactory(organization=organization, user=UserFactory(email=email))
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    manager.policy_attachments.create(policy=policy, organization=organization)
    return manager
