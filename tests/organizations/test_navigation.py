"""No link leads to a page its viewer is refused.

For each persona (owner, tech, billing, read-only, and a member granted only one project),
the dashboard and the main pages of the organization that open for them are fetched, every
link into the organization (`href="/o/<org>/…"`) is collected, and each is requested once
(one level: the linked pages' own links are not followed): none may answer 403 or fail.
"""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from organizations.models import Membership
from tests.conftest import Org
from tests.factories import MembershipFactory, grant
from tests.urls import World, make_world

pytestmark = pytest.mark.django_db

PERSONAS = ("owner", "tech", "billing", "readonly", "project_member")
MAIN_PAGES = (
    "organizations:dashboard",
    "organizations:project_list",
    "organizations:user_list",
    "organizations:invitation_list",
    "organizations:group_list",
    "organizations:application_list",
    "organizations:api_key_list",
    "organizations:invoice_list",
    "organizations:billing_contact",
    "organizations:settings",
    "organizations:security_settings",
    "policies:policy_list",
    "policies:guardrails",
    "iamtools:catalogue",
    "iamtools:simulator",
    "audit:event_list",
)
_HREF = re.compile(r'href="(/o/[^"#]+)')


def _project_member(world: World) -> Membership:
    """A member who may only see and change the project `web` and its instances."""
    member = MembershipFactory(organization=world.organization)
    grant(member, actions=["ProjectsFullAccess", "InstancesReadOnly"], projects=[world.project])
    return member


def _links(client: Client, org_id: object) -> tuple[set[str], list[str]]:
    """The organization's links on the main pages that open for `client`, and those pages."""
    links: set[str] = set()
    opened: list[str] = []
    prefix = f"/o/{org_id}/"
    for name in MAIN_PAGES:
        response = client.get(reverse(name, args=[org_id]))
        if response.status_code != 200:
            continue
        opened.append(name)
        found = {html.unescape(href) for href in _HREF.findall(response.content.decode())}
        links |= {href for href in found if href.startswith(prefix)}
    return links, opened


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_link_leads_to_a_page_the_viewer_is_refused(org: Org, persona: str) -> None:
    world = make_world(org.organization, actor=org.owner)
    if persona == "project_member":
        client = Client()
        client.force_login(_project_member(world).user)
    else:
        client = org.client_for(persona)
    links, opened = _links(client, org.organization.pk)
    assert "organizations:dashboard" in opened, f"{persona} has no home"
    assert links, f"{persona}: no link found"
    broken = {}
    for link in sorted(links):
        status = client.get(link).status_code
        if status == 403 or status >= 500:
            broken[link] = status
    assert not broken, f"{persona} (from {', '.join(opened)}): {broken}"


def test_the_billing_role_opens_billing_and_the_dashboard_only(org: Org) -> None:
    """The Billing role reads "invoices and billing contact": not the projects nor the
    security settings (BillingAccess used to hold OrganizationReadOnly)."""
    client = org.client_for("billing")
    statuses = {
        name: client.get(reverse(name, args=[org.organization.pk])).status_code
        for name in MAIN_PAGES
    }
    assert {name for name, status in statuses.items() if status == 200} == {
        "organizations:dashboard",
        "organizations:invoice_list",
        "organizations:billing_contact",
    }
