"""Change previews in Chromium: a rule previewed shows who gains it in place of the
rules card; Cancel brings the rules back; Confirm saves it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from policies.models import PolicyAttachment, Rule
from tests.browser.helpers import sign_in
from tests.factories import GroupFactory, MembershipFactory, PolicyFactory, UserFactory

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_a_rule_previewed_then_confirmed(page: Page) -> None:
    owner = MembershipFactory(is_owner=True, user=UserFactory(email="olga@preview.example"))
    organization = owner.organization
    bob = UserFactory(email="bob@preview.example")
    bob = MembershipFactory(organization=organization, user=bob)
    policy = PolicyFactory(organization=organization, name="Invoices")
    group = GroupFactory(organization=organization, name="Finance")
    group.members.add(bob)
    PolicyAttachment.objects.create(policy=policy, group=group, organization=organization)
    sign_in(page, "olga@preview.example")
    page.goto(f"/o/{organization.pk}/iam/policies/{policy.pk}/")

    page.locator(".add-rule > summary").click()
    add = page.locator("form.rule-form").first
    add.get_by_label("Other actions").fill("billing:invoices:read")
    add.get_by_role("button", name="Preview").click()

    card = page.locator("#rules.change-preview")
    expect(card).to_contain_text("+1 principal gains")
    expect(card).to_contain_text("bob@preview.example")
    expect(card).to_contain_text("through group Finance")
    assert not Rule.objects.filter(policy=policy).exists()

    card.get_by_role("link", name="Cancel").click()
    expect(page.locator("#rules")).not_to_have_class("card change-preview")
    expect(page.locator("#rules")).to_contain_text("No rules yet")

    page.locator(".add-rule > summary").click()
    add = page.locator("form.rule-form").first
    add.get_by_label("Other actions").fill("billing:invoices:read")
    add.get_by_role("button", name="Preview").click()
    page.locator("#rules.change-preview").get_by_role("button", name="Confirm and save").click()
    expect(page.locator("#messages")).to_contain_text("Rule saved.")
    expect(page.locator("#rules")).to_contain_text("billing:invoices:read")
    assert Rule.objects.filter(policy=policy).count() == 1
