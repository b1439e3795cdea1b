"""Single sign-on in Chromium, through the real provider's own login page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from federation.models import FederatedIdentity
from policies.models import Policy
from tests.conftest import Org
from tests.factories import MembershipFactory
from tests.federation.conftest import IdPServer, add_provider, running_idp


@pytest.fixture(scope="session")
def browser_idp(live_server: object) -> Iterator[IdPServer]:
    with running_idp(f"{live_server.url}/sso/oidc/callback/") as started:
        yield started


@pytest.mark.django_db(transaction=True)
def test_a_member_signs_in_through_the_providers_login_page(
    page: Page, org: Org, browser_idp: IdPServer
) -> None:
    member = MembershipFactory(  # an account of the organization's own (a guest links first)
        organization=org.organization,
        user__email="pat@acme.test",
        user__managed_by=org.organization,
    )
    readonly = Policy.objects.get(kind=Policy.Kind.MANAGED, name="ReadOnlyAccess")
    member.policy_attachments.create(policy=readonly, organization=org.organization)
    add_provider(org.organization, org.owner.user, browser_idp.issuer)
    # The provider's stock login page asks for a web font and a favicon: nothing to fetch.
    page.route("https://fonts.googleapis.com/**", lambda route: route.fulfill(body=""))
    page.route(f"{browser_idp.issuer}/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    page.get_by_label("Work email").fill("pat@acme.test")
    page.get_by_role("button", name="Continue with single sign-on").click()
    # The provider's own page (oidc-provider's login form), on its own origin.
    page.wait_for_url(f"{browser_idp.issuer}/**")
    page.locator("input[name=login]").fill("pat@acme.test")
    page.locator("input[name=password]").fill("anything")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_url(f"**/o/{org.organization.pk}/**")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert FederatedIdentity.objects.get(subject="pat@acme.test").user == member.user
