"""An IAM manager who is not an owner tries to give themself billing access: the panel
refuses in place, naming what exceeds their rights, and nothing changes."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from audit.models import AuditEvent
from policies.models import Policy, PolicyAttachment
from tests.browser.helpers import iam_manager, sign_in

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_an_iam_manager_cannot_give_themself_billing_access(
    browser: Browser, live_server: object
) -> None:
    manager = iam_manager("Ceiling Co", "ian@ceiling.example")
    organization = manager.organization
    billing = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")

    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    sign_in(page, "ian@ceiling.example")
    page.goto(f"/o/{organization.pk}/iam/users/{manager.pk}/")
    page.locator("#principal-policies").get_by_label("Policy").fill("Billing")
    page.locator("#principal-policies").get_by_label("BillingAccess (managed)", exact=True).check()
    page.get_by_role("button", name="Attach policy").click()

    panel = page.locator("#principal-policies")
    expect(panel).to_contain_text("You can only grant what you hold yourself")
    expect(panel).to_contain_text("billing:invoices:read")
    assert not PolicyAttachment.objects.filter(membership=manager, policy=billing).exists()
    assert AuditEvent.objects.filter(action="authz.delegation.refused").count() == 1
    context.close()
