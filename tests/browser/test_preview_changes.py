"""Change previews in Chromium beyond rules: a Preview button posting its form over
HTMX (the typed group name, the member's row) shows the diff in place of the card;
Cancel brings the card back; Confirm saves."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from organizations.models import Group, Membership
from policies.models import PolicyAttachment
from tests.browser.helpers import sign_in
from tests.factories import (
    GroupFactory,
    MembershipFactory,
    PolicyFactory,
    RuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.usefixtures("transactional_db")


def _world() -> tuple[Membership, Membership, Group]:
    """Olga owns the organization; Bob is in group Finance, which may read invoices."""
    owner = MembershipFactory(is_owner=True, user=UserFactory(email="olga@preview.example"))
    organization = owner.organization
    bob = MembershipFactory(
        organization=organization, user=UserFactory(email="bob@preview.example")
    )
    policy = PolicyFactory(organization=organization, name="Invoices")
    RuleFactory(policy=policy, actions=["billing:invoices:read"])
    group = GroupFactory(organization=organization, name="Finance")
    group.members.add(bob)
    PolicyAttachment.objects.create(policy=policy, group=group, organization=organization)
    return owner, bob, group


def test_a_group_deletion_previewed_cancelled_then_confirmed(page: Page) -> None:
    owner, _, group = _world()
    sign_in(page, "olga@preview.example")
    page.goto(f"/o/{owner.organization_id}/iam/groups/{group.pk}/delete/")

    page.get_by_label("Type the group name to confirm").fill("Finance")
    page.get_by_role("button", name="Preview").click()
    card = page.locator("#group-delete.change-preview")
    expect(card).to_contain_text("1 principal loses")
    expect(card).to_contain_text("bob@preview.example")
    assert Group.objects.filter(pk=group.pk).exists()

    card.get_by_role("link", name="Cancel").click()
    expect(page.locator("#group-delete")).to_contain_text("Delete group Finance?")

    page.get_by_label("Type the group name to confirm").fill("Finance")
    page.get_by_role("button", name="Preview").click()
    page.locator("#group-delete.change-preview").get_by_role(
        "button", name="Confirm and save"
    ).click()
    expect(page.locator("#messages")).to_contain_text("Group Finance deleted.")
    assert not Group.objects.filter(pk=group.pk).exists()


def test_removing_a_member_previewed_in_place_of_the_members_card(page: Page) -> None:
    owner, bob, group = _world()
    sign_in(page, "olga@preview.example")
    page.goto(f"/o/{owner.organization_id}/iam/groups/{group.pk}/")

    page.get_by_role("button", name="Preview removing bob@preview.example").click()
    card = page.locator("#group-members.change-preview")
    expect(card).to_contain_text("Preview: remove bob@preview.example from Finance")
    expect(card).to_contain_text("1 principal loses")
    card.get_by_role("button", name="Confirm and save").click()
    expect(page.locator("#group-members")).to_contain_text("No users in this group yet.")
    assert not group.members.filter(pk=bob.pk).exists()


def test_a_suspension_previewed_then_confirmed(page: Page) -> None:
    owner, bob, _ = _world()
    sign_in(page, "olga@preview.example")
    page.goto(f"/o/{owner.organization_id}/iam/users/{bob.pk}/")

    page.get_by_role("button", name="Preview suspending bob@preview.example").click()
    card = page.locator("#user-suspend.change-preview")
    expect(card).to_contain_text("1 principal loses")
    bob.refresh_from_db()
    assert bob.status == Membership.Status.ACTIVE
    card.get_by_role("button", name="Confirm and save").click()
    expect(page.locator("#messages")).to_contain_text("is suspended")
    bob.refresh_from_db()
    assert bob.status == Membership.Status.SUSPENDED
