"""An IAM manager who is not an owner tries to give themself billing access: the panel
refuses in place, naming what exceeds their rights, and nothing changes."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from audit.models import AuditEvent
from policies.models import Policy, PolicyAttachment
from tests.browser.helpers import sign_in
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_an_iam_manager_cannot_give_themself_billing_access(
    browser: Browser, live_server: object
) -> None:
    organization = OrganizationFactory(name="Ceiling Co")
    MembershipFactory(organization=organization, is_owner=True)
    manager = MembershipFactory(
        organization=organization, user=UserFactory(email="ian@ceiling.example")
    )
    iam_manager = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    manager.policy_attachments.create(policy=iam_manager, organization=organization)
    billing = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")

    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    sign_in(page, "ian@ceiling.example")
    page.goto(f"/o/{organization.pk}/iam/users/{manager.pk}/")
    page.locator("#principal-policies").get_by_label("Policy").select_option(
        label="BillingAccess (managed)"
    )
    page.get_by_role("button", name="Attach policy").click()

    panel = page.locator("#principal-policies")
    expect(panel).to_contain_text("You can only grant what you hold yourself")
    expect(panel).to_contain_text("billing:invoices:read")
    assert not PolicyAttachment.objects.filter(membership=manager, policy=billing).exists()
    assert AuditEvent.objects.filter(action="authz.delegation.refused").count() == 1
    context.close()
