"""The rule editor in Chromium: an IP rule written with the builder comes back in the
builder when edited, so changing its range replaces it; the condition's time window
sits on one row; a new rule allows by default."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from policies.models import Rule
from tests.browser.helpers import sign_in
from tests.factories import MembershipFactory, PolicyFactory, UserFactory

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_editing_an_ip_rule_changes_its_range(page: Page) -> None:
    owner = MembershipFactory(is_owner=True, user=UserFactory(email="olga@rules.example"))
    policy = PolicyFactory(organization=owner.organization, name="Office only")
    sign_in(page, "olga@rules.example")
    page.goto(f"/o/{owner.organization.pk}/iam/policies/{policy.pk}/")

    page.locator(".add-rule > summary").click()
    add = page.locator("form.rule-form").first
    expect(add.get_by_label("Allow")).to_be_checked()
    boxes = [add.get_by_label(label).bounding_box() for label in ("From", "Until", "Time zone")]
    assert all(boxes), boxes
    assert len({round(box["y"]) for box in boxes}) == 1, boxes  # one aligned row
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    add.get_by_label("Other actions").fill("iam:users:list")
    add.get_by_label("Source IP ranges").fill("10.0.0.0/8")
    add.get_by_role("button", name="Save rule").click()
    expect(page.locator("#messages")).to_contain_text("Rule saved.")
    rule = Rule.objects.get(policy=policy)
    assert rule.condition == 'ip_in_range(request.ip, "10.0.0.0/8")'

    page.get_by_role("link", name="Edit rule 1").click()
    edit = page.locator(f"#rule-{rule.pk} form.rule-form")
    expect(edit.get_by_label("Source IP ranges")).to_have_value("10.0.0.0/8")
    expect(edit.get_by_label("CEL condition")).to_have_value("")
    expect(edit).not_to_contain_text("cannot show")
    edit.get_by_label("Source IP ranges").fill("192.168.0.0/16")
    edit.get_by_role("button", name="Save rule").click()
    expect(page.locator("#messages")).to_contain_text("Rule saved.")
    expect(page.locator("#messages")).not_to_contain_text("false for every sample")
    rule.refresh_from_db()
    assert rule.condition == 'ip_in_range(request.ip, "192.168.0.0/16")'
