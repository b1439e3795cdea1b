from __future__ import annotations

from playwright.sync_api import Page, expect


def test_the_api_docs_render_under_the_csp(page: Page) -> None:
    # The page fixture fails the test on any console error: a CSP violation is one.
    page.goto("/api/v1/docs")
    expect(page.get_by_text("IAM Portal API").first).to_be_visible()
    expect(page.locator("#operations-Authorization-authorize")).to_be_visible()
    expect(page.get_by_text("/api/v1/me").first).to_be_visible()
