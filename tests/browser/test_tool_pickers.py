"""The IAM tools' and the rule editor's search pickers in Chromium: the rule editor's
chosen projects and the simulator's principal and project are found by typing, then
post like the lists they replace."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from policies.models import Rule
from tests.browser.helpers import sign_in
from tests.factories import (
    ApplicationFactory,
    MembershipFactory,
    PolicyFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_rule_editor_chooses_projects_by_searching(page: Page) -> None:
    owner = MembershipFactory(is_owner=True, user=UserFactory(email="olga@picks.example"))
    organization = owner.organization
    for n in range(25):
        ProjectFactory(organization=organization, name=f"batch-{n:02d}")
    web = ProjectFactory(organization=organization, name="web-frontend")
    policy = PolicyFactory(organization=organization, name="Web deployers")
    sign_in(page, "olga@picks.example")
    page.goto(f"/o/{organization.pk}/iam/policies/{policy.pk}/")

    page.locator(".add-rule > summary").click()
    add = page.locator("form.rule-form").first
    expect(add.locator('input[name="projects"]')).to_have_count(0)  # no list of projects
    add.get_by_label("Other actions").fill("compute:instances:create")
    add.get_by_label("Chosen projects").check()
    add.get_by_role("searchbox", name="Projects").press_sequentially("web", delay=30)
    add.get_by_label("web-frontend").check()
    add.get_by_role("button", name="Save rule").click()
    expect(page.locator("#messages")).to_contain_text("Rule saved.")
    rule = Rule.objects.get(policy=policy)
    assert list(rule.projects.all()) == [web]

    page.get_by_role("link", name="Edit rule 1").click()
    edit = page.locator(f"#rule-{rule.pk} form.rule-form")
    expect(edit.get_by_label("web-frontend")).to_be_checked()


def test_simulator_picks_an_application_and_a_project(page: Page) -> None:
    owner = MembershipFactory(is_owner=True, user=UserFactory(email="sam@picks.example"))
    organization = owner.organization
    ApplicationFactory(organization=organization, name="deploy-bot")
    ProjectFactory(organization=organization, name="web-frontend")
    sign_in(page, "sam@picks.example")
    page.goto(f"/o/{organization.pk}/iam/simulator/")

    page.get_by_label("Principal").fill("deploy")
    page.get_by_label("deploy-bot (application)").check()
    page.get_by_label("Action:").select_option("compute:instances:create")
    page.get_by_role("searchbox", name="Project:").fill("web")
    page.get_by_label("web-frontend").check()
    page.get_by_role("button", name="Simulate").click()
    result = page.locator("#simulation-result")
    expect(result).to_contain_text("DENY")
    expect(result).to_contain_text("Project web-frontend")
    expect(result).to_contain_text("deploy-bot")
