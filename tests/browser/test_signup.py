from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from organizations.models import Project


def test_sign_up_land_on_dashboard_and_sign_out(page: Page) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("analytical-engine-1843")
    page.get_by_label("Organization name").fill("Analytical Engines")
    page.get_by_role("button", name="Create account").click()

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
    page.goto("/accounts/signup/")
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill("compiler-cobol-1959")
    page.get_by_label("Organization name").fill("Navy Labs")
    page.get_by_role("button", name="Create account").click()
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
