"""An IAM manager who detaches their own IAM rights is asked first, in place (HTMX), and
loses them only after saying so."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from policies.models import Policy, PolicyAttachment
from tests.browser.helpers import iam_manager, sign_in

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_detaching_your_own_iam_rights_asks_before_it_happens(
    browser: Browser, live_server: object
) -> None:
    manager = iam_manager("Careful Co", "ivy@careful.example")
    organization = manager.organization
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")

    # A context of its own: the page fixture fails on console errors, and the last page
    # here is rightly a 403.
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    sign_in(page, "ivy@careful.example")
    page.goto(f"/o/{organization.pk}/iam/users/{manager.pk}/")
    page.get_by_role("button", name="Detach IAMManager").click()

    expect(page.get_by_role("heading", name="This change would lock you out")).to_be_visible()
    expect(page.locator("#main")).to_contain_text("iam:policies:attach")
    assert PolicyAttachment.objects.filter(membership=manager, policy=policy).exists()

    page.get_by_role("button", name="Save anyway and lose this permission").click()
    expect(page.get_by_text("IAMManager detached from ivy@careful.example.")).to_be_visible()
    expect(
        page.get_by_role("heading", name="You have no permissions in Careful Co yet")
    ).to_be_visible()
    assert not PolicyAttachment.objects.filter(membership=manager).exists()
    context.close()
