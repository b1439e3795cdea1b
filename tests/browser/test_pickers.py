from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from organizations.models import Organization
from policies.models import PolicyAttachment
from tests.browser.helpers import sign_up
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyFactory,
    UserFactory,
)

PASSWORD = "pickers-search-as-you-type"


def _organization(page: Page) -> Organization:
    sign_up(page, "Grace Hopper", "grace@example.com", PASSWORD, "Navy")
    organization = Organization.objects.get(name="Navy")
    for n in range(30):
        MembershipFactory(
            organization=organization, user=UserFactory(email=f"sailor{n:02d}@example.com")
        )
    MembershipFactory(organization=organization, user=UserFactory(email="ada@example.com"))
    return organization


def test_pickers_search_as_you_type_and_post(page: Page) -> None:
    organization = _organization(page)
    policy = PolicyFactory(organization=organization, name="Deployers")
    GroupFactory(organization=organization, name="compilers")
    ApplicationFactory(organization=organization, name="cobol-runner")

    page.goto(f"/o/{organization.pk}/iam/policies/{policy.pk}/")
    attachments = page.locator("#attachments")
    attachments.get_by_label("User").fill("ada")
    attachments.get_by_label("ada@example.com").check()
    attachments.get_by_role("button", name="Attach to the chosen user").click()
    expect(attachments.locator("table")).to_contain_text("ada@example.com")
    attachment = PolicyAttachment.objects.get(policy=policy)
    assert attachment.membership.user.email == "ada@example.com"

    # Typed key by key (the box was just swapped in); Enter searches, it posts nothing.
    attachments.get_by_label("Group").press_sequentially("compil", delay=50)
    attachments.get_by_label("Group").press("Enter")
    attachments.get_by_label("compilers").check()
    expect(page).to_have_url(re.compile(rf"/policies/{policy.pk}/$"))
    attachments.get_by_role("button", name="Attach to the chosen group").click()
    expect(attachments.locator("table")).to_contain_text("compilers")

    # The user page joins a group through its picker.
    page.goto(f"/o/{organization.pk}/iam/users/{attachment.membership.pk}/")
    groups = page.locator("#user-groups")
    groups.get_by_label("Add to group").fill("comp")
    groups.get_by_label("compilers").check()
    groups.get_by_role("button", name="Add", exact=True).click()
    expect(groups.locator(".chips")).to_contain_text("compilers")

    # The group page pages its users, searches them, and adds an application through
    # its picker.
    group = organization.groups.get(name="compilers")
    page.goto(f"/o/{organization.pk}/iam/groups/{group.pk}/")
    members = page.locator("#group-members")
    members.get_by_label("Add a user").fill("sailor07")
    members.get_by_label("sailor07@example.com").check()
    members.get_by_role("button", name="Add the user").click()
    expect(members.locator("table").first).to_contain_text("sailor07@example.com")
    assert group.members.filter(user__email="sailor07@example.com").exists()

    group.members.add(*organization.memberships.all())
    page.goto(f"/o/{organization.pk}/iam/groups/{group.pk}/")
    rows = members.locator("table").first.locator("tbody tr")
    expect(rows).to_have_count(25)
    members.get_by_label("Search the group").press_sequentially("sailor1")
    expect(rows).to_have_count(10)
    expect(members.get_by_label("Search the group")).to_be_focused()
    members.get_by_label("Add an application").fill("cobol")
    members.get_by_label("cobol-runner").check()
    members.get_by_role("button", name="Add the application").click()
    expect(members.locator("table").nth(1)).to_contain_text("cobol-runner")
    assert list(group.applications.values_list("name", flat=True)) == ["cobol-runner"]


def test_a_picker_works_without_scripts(browser: Browser, live_server: object) -> None:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    organization = _organization(page)
    policy = PolicyFactory(organization=organization, name="Readers")

    page.goto(f"/o/{organization.pk}/iam/policies/{policy.pk}/")
    page.locator("#attachments").get_by_label("User").fill("sailor07")
    page.locator("#attachments").get_by_role("button", name="Search").first.click()
    page.locator("#attachments").get_by_label("sailor07@example.com").check()
    page.locator("#attachments").get_by_role("button", name="Attach to the chosen user").click()
    expect(page.locator("#attachments table")).to_contain_text("sailor07@example.com")

    # The application page's add-to-group picker, previewed then confirmed.
    application = ApplicationFactory(organization=organization, name="ci-runner")
    GroupFactory(organization=organization, name="deployers")
    page.goto(f"/o/{organization.pk}/iam/applications/{application.pk}/")
    groups = page.locator("#application-groups")
    groups.get_by_label("Add to a group").fill("deploy")
    groups.get_by_role("button", name="Search").click()
    groups.get_by_label("deployers").check()
    groups.get_by_role("button", name="Preview adding to the group").click()
    expect(page.get_by_text("Preview: add ci-runner to deployers")).to_be_visible()
    assert not application.groups.exists()
    page.get_by_role("button", name="Confirm and save").click()
    expect(page.locator("#application-groups table")).to_contain_text("deployers")
    assert list(application.groups.values_list("name", flat=True)) == ["deployers"]
    context.close()
