"""`GET /api/v1/who-can`: the who-can answer in the API's shape, with cursor paging."""

from __future__ import annotations

import pytest

from tests.api.conftest import persona_api
from tests.conftest import Org
from tests.factories import (
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    ProjectFactory,
    ResourceFactory,
    RuleFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.django_db


def test_shape_with_paths_conditions_and_blocks(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Finance")
    group.members.add(org.tech)
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(
        policy=policy, position=1, actions=["billing:invoices:read"], condition="request.mfa"
    )
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    deny = grant(org.billing, effect="deny", actions=["billing:invoices:read"])
    response = persona_api(org, "readonly").get("/who-can?action=billing:invoices:read")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["action"] == "billing:invoices:read" and body["next"] is None
    assert body["counts"] == {
        "owner": 1,
        "allowed": 0,
        "conditional": 1,
        "blocked": 1,
        "suspended": 0,
    }
    items = {item["principal"]["label"]: item for item in body["items"]}
    tech = items[org.tech.user.email]
    assert tech["status"] == "conditional" and tech["condition"] == "allowed if (request.mfa)"
    assert tech["principal"] == {
        "type": "user",
        "id": str(org.tech.pk),
        "label": org.tech.user.email,
        "name": org.tech.user.full_name,
    }
    path = tech["paths"][0]
    assert path["policy"] == policy.name and path["rule"] == 1 and path["groups"] == ["Finance"]
    assert path["direct"] is False and path["condition"] == "request.mfa"
    blocked = items[org.billing.user.email]
    assert blocked["status"] == "blocked" and blocked["blocked_by"]["policy"] == deny.name
    assert items[org.owner.user.email]["status"] == "owner"


def test_cursor_pages_cover_everyone_once(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    for n in range(7):
        group.members.add(
            MembershipFactory(organization=org.organization, user=UserFactory(email=f"p{n}@x.test"))
        )
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, position=1, actions=["billing:invoices:list"])
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    api = persona_api(org, "owner")
    seen, cursor = [], None
    while True:
        path = "/who-can?action=billing:invoices:list&limit=3"
        response = api.get(path + (f"&cursor={cursor}" if cursor else ""))
        body = response.json()
        seen += [item["principal"]["label"] for item in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 9  # 7, billing, owner
    searched = api.get("/who-can?action=billing:invoices:list&q=p3@").json()
    assert [item["principal"]["label"] for item in searched["items"]] == ["p3@x.test"]


def test_resource_and_project_questions(org: Org) -> None:
    resource = ResourceFactory(project=ProjectFactory(organization=org.organization))
    api = persona_api(org, "owner")
    on = api.get(f"/who-can?action=compute:instances:delete&resource={resource.pk}")
    assert on.status_code == 200
    assert on.json()["project"] == str(resource.project_id)
    wrong = api.get(f"/who-can?action=dns:zones:read&resource={resource.pk}")
    assert wrong.status_code == 422
    org_level = api.get(f"/who-can?action=billing:invoices:read&project={resource.project_id}")
    assert org_level.status_code == 422
    assert api.get("/who-can?action=nope:nope:nope").status_code == 422


def test_another_organizations_ids_are_404(org: Org) -> None:
    foreign = ResourceFactory()
    api = persona_api(org, "owner")
    assert (
        api.get(f"/who-can?action=compute:instances:read&resource={foreign.pk}").status_code == 404
    )
    assert (
        api.get(f"/who-can?action=compute:instances:read&project={foreign.project_id}").status_code
        == 404
    )


def test_guarded_by_the_simulator_permission(org: Org) -> None:
    response = persona_api(org, "billing").get("/who-can?action=billing:invoices:read")
    assert response.status_code == 403
    assert response.json()["error"]["details"]["permission"] == "iam:simulator:use"
