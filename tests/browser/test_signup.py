from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from organizations.models import Project
from tests.browser.helpers import sign_up


def test_sign_up_land_on_dashboard_and_sign_out(page: Page) -> None:
    sign_up(page, "Ada Lovelace", "ada@example.com", "analytical-engine-1843", "Analytical Engines")

    expect(page).to_have_url(re.compile(r"/o/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Analytical Engines")
    expect(
        page.get_by_text("Welcome! Your organization Analytical Engines is ready.")
    ).to_be_visible()
    expect(page.get_by_role("navigation", name="Organization")).to_contain_text("Billing")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.goto("/organizations/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))


def test_create_and_rename_a_project_inline(page: Page) -> None:
    sign_up(page, "Grace Hopper", "grace@example.com", "compiler-cobol-1959", "Navy Labs")
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Projects").click()

    page.get_by_label("Name").fill("mark-ii")
    page.get_by_role("button", name="Create project").click()
    row = page.locator("tr", has_text="mark-ii")
    expect(row).to_be_visible()
    expect(page.get_by_text("Project mark-ii created.")).to_be_visible()

    row.get_by_role("link", name="Edit").click()
    editing = page.locator("tr.editing")
    editing.get_by_label("Name").fill("mark-iii")
    editing.get_by_role("button", name="Save").click()
    expect(page.locator("tr", has_text="mark-iii")).to_be_visible()
    expect(page.locator("tr.editing")).to_have_count(0)
    assert Project.objects.filter(name="mark-iii").exists()
