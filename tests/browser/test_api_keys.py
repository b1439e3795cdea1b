from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from organizations.models import APIKey, Organization
from organizations.services.api_keys import api_key_authenticate
from tests.browser.helpers import sign_up
from tests.factories import GroupFactory


def test_create_an_api_key_and_see_its_secret_once(page: Page) -> None:
    sign_up(
        page, "Katherine Johnson", "katherine@example.com", "trajectories-1962-orbit", "Langley"
    )

    page.get_by_role("navigation", name="Organization").get_by_role("link", name="IAM").click()
    page.get_by_role("navigation", name="Identity and access").get_by_role(
        "link", name="API keys"
    ).click()
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    page.get_by_role("link", name="Create an API key").click()
    page.get_by_label("Description").fill("orbit calculations")
    page.get_by_role("button", name="Create API key").click()

    expect(page).to_have_url(re.compile(r"/iam/api-keys/[0-9a-f-]{36}/created/$"))
    secret_box = page.locator("#api-key-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.inner_text().strip()
    assert len(secret) >= 43
    key = APIKey.objects.get(description="orbit calculations")
    assert key.secret_hash != secret
    assert api_key_authenticate(access_key=key.access_key, secret=secret) is not None

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.get_by_role("button", name="Copy")
    expect(copy).to_be_visible()
    copy.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.reload()
    expect(page.get_by_text("The secret was shown once")).to_be_visible()
    expect(page.locator("#api-key-secret")).to_have_count(0)
    assert secret not in page.content()

    page.get_by_role("link", name="Back to API keys").click()
    row = page.locator("tr", has_text=key.access_key)
    expect(row).to_contain_text("orbit calculations")
    assert secret not in page.content()


def test_application_page_renames_groups_policies_and_keys_inline(page: Page) -> None:
    sign_up(
        page, "Dorothy Vaughan", "dorothy@example.com", "fortran-west-computing", "West Computing"
    )
    organization = Organization.objects.get(name="West Computing")
    GroupFactory(organization=organization, name="deployers")

    page.goto(f"/o/{organization.pk}/iam/applications/")
    expect(page.get_by_text("No applications yet.")).to_be_visible()
    page.get_by_label("Name").fill("ci-runner")
    page.get_by_role("button", name="Create application").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ci-runner")

    page.get_by_role("link", name="Rename or describe").click()
    details = page.locator("#application-details.editing")
    details.get_by_label("Name").fill("ci-deployer")
    details.get_by_role("button", name="Save").click()
    expect(page.locator("#application-details h1")).to_contain_text("ci-deployer")
    expect(page.locator("#application-details.editing")).to_have_count(0)

    groups = page.locator("#application-groups")
    groups.get_by_label("Add to a group").fill("deploy")
    groups.get_by_label("deployers").check()
    groups.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#application-groups table")).to_contain_text("deployers")
    expect(page.get_by_text("ci-deployer added to group deployers.")).to_be_visible()

    panel = page.locator("#principal-policies")
    # A search picker: type (key by key: the panel was just swapped in), then choose.
    panel.get_by_label("Policy").press_sequentially("BillingRead", delay=30)
    panel.get_by_label("BillingReadOnly (managed)", exact=True).check()
    panel.get_by_role("button", name="Attach policy").click()
    expect(panel.locator("table")).to_contain_text("BillingReadOnly")
    page.locator("#principal-policies").get_by_role("button", name="Detach BillingReadOnly").click()
    expect(page.locator("#principal-policies table")).not_to_contain_text("BillingReadOnly")

    page.get_by_role("link", name="Create an API key").click()
    expect(page.get_by_label("ci-deployer", exact=True)).to_be_checked()
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator("#api-key-secret")).to_be_visible()
    page.get_by_role("link", name="ci-deployer").click()
    key = APIKey.objects.get()
    expect(page.locator("#application-keys")).to_contain_text(key.access_key)
