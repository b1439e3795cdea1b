"""An owner invites someone, who accepts in another browser, joins a group holding a
policy, and then sees exactly the pages that policy allows."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import sign_up


def _sign_up(page: Page) -> None:
    sign_up(page, "Olive Owner", "olive@example.com", "owner-passphrase-2026", "Invite Co")


def test_invite_accept_group_policy_and_see_only_allowed_pages(
    page: Page, browser: Browser, live_server: object
) -> None:
    _sign_up(page)
    org_url = page.url
    page.goto(org_url + "iam/invitations/new/")
    page.get_by_label("Email addresses").fill("newbie@example.com")
    page.get_by_role("button", name="Send invitations").click()
    expect(page.get_by_text("1 invitation sent by email.")).to_be_visible()
    link = page.get_by_label("Link for newbie@example.com").input_value()
    assert "/invitations/" in link

    # The invitee, in a browser of their own, creates an account and joins.
    other = browser.new_context(base_url=live_server.url)
    invitee = other.new_page()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="Join Invite Co")).to_be_visible()
    invitee.get_by_label("Your name").fill("New Bie")
    invitee.get_by_label("Password").fill("newbie-passphrase-2026")
    invitee.get_by_role("button", name="Create account and join").click()
    expect(invitee.get_by_text("Welcome to Invite Co.")).to_be_visible()
    # No policy yet: the dashboard itself is refused, and says which permission is missing.
    expect(invitee.get_by_text("organization:organization:read").first).to_be_visible()

    # The owner makes a group with the managed BillingAccess policy and adds the newcomer.
    page.goto(org_url + "iam/groups/")
    page.get_by_label("Name").fill("Finance")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("heading", name="Finance", level=1)).to_be_visible()
    # The group's own page, once: not swapped into the list's create card (issue #11).
    expect(page).to_have_url(re.compile(r"/iam/groups/[0-9a-f-]{36}/$"))
    expect(page.get_by_text("Group Finance created.")).to_have_count(1)
    expect(page.locator("header.topbar")).to_have_count(1)
    page.get_by_label("Policy").fill("BillingAcc")
    page.get_by_label("BillingAccess (managed)", exact=True).check()
    page.get_by_role("button", name="Attach policy").click()
    # Assert on the tables, not the sections: the picker and the select already hold
    # these names, so only a row proves the POST has landed.
    expect(page.locator("#principal-policies table")).to_contain_text("BillingAccess")
    page.get_by_label("Add a user").fill("newbie")
    page.get_by_label("newbie@example.com").check()
    page.get_by_role("button", name="Add the user").click()
    expect(page.locator("#group-members table").first).to_contain_text("newbie@example.com")

    # Their next request sees the new permissions: billing yes, projects and IAM no.
    invitee.goto(org_url + "billing/")
    expect(invitee.get_by_role("heading", name="Billing", level=1)).to_be_visible()
    nav = invitee.get_by_role("navigation", name="Organization")
    expect(nav).to_contain_text("Billing")
    expect(nav.get_by_role("link", name="IAM")).to_have_count(0)
    response = invitee.goto(org_url + "iam/users/")
    assert response is not None and response.status == 403
    expect(invitee.get_by_text("iam:users:list").first).to_be_visible()
    other.close()

    # Search as you type in the users list narrows the rows without a reload.
    page.goto(org_url + "iam/users/")
    rows = page.locator("#user-results tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Search").fill("newbie")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("newbie@example.com")
    expect(page).to_have_url(re.compile(r"q=newbie"))
