"""The operators' admin in a real browser: email, password and code in one submit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.accounts.helpers import code, enroll
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_an_operator_signs_in_with_the_first_right_code(page: Page) -> None:
    # The seed's operator: a staff account with a confirmed authenticator.
    operator = UserFactory(email="operator@acme.example", is_staff=True, is_superuser=True)
    device = enroll(operator)

    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_label("Email").fill("operator@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authentication code").fill(code(device))
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page.get_by_text("Please select a device.")).to_have_count(0)
