"""`/api/v1/groups`: list, create, read, members, update, delete, add/remove users and
applications, through the console's services (the delegation ceiling included), audited
with the key as the actor, each allowed exactly as the evaluator decides."""

from __future__ import annotations

from typing import Any

import pytest

from audit import events
from organizations.models import Group
from policies.models import Policy, PolicyAttachment
from tests.api.conftest import (
    API,
    PERSONAS,
    allow,
    call,
    check_role,
    key_token,
    last_event,
    persona_api,
    version,
)
from tests.conftest import Org
from tests.factories import ApplicationFactory, GroupFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_api(org: Org) -> API:
    return API(key_token(org.owner, org.owner))


def attach_managed(group: Group, name: str) -> None:
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name=name)
    PolicyAttachment.objects.create(policy=policy, organization=group.organization, group=group)


def test_create_read_update_delete(org: Org, owner_api: API) -> None:
    response = owner_api.post("/groups", {"name": "ops", "description": "On call"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "ops" and body["member_count"] == 0
    last_event(org.organization, events.GROUP_CREATED)
    path = f"/groups/{body['id']}"
    assert owner_api.get(path).json()["description"] == "On call"

    response = call(owner_api, "PATCH", path, {"name": "operations"})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "operations"
    assert response.json()["description"] == "On call"
    assert last_event(org.organization, events.GROUP_UPDATED).data["after"] == {
        "name": "operations"
    }

    duplicate = owner_api.post("/groups", {"name": "Operations"})
    assert duplicate.status_code == 400

    before = version(org.organization)
    assert call(owner_api, "DELETE", path).status_code == 204
    assert not Group.objects.filter(pk=body["id"]).exists()
    last_event(org.organization, events.GROUP_DELETED)
    assert version(org.organization) > before
    assert owner_api.get(path).status_code == 404


def test_list_searches_and_pages(org: Org, owner_api: API) -> None:
    for name in ["beta", "Alpha", "gamma", "delta-ops"]:
        GroupFactory(organization=org.organization, name=name)
    page = owner_api.get("/groups?limit=3").json()
    assert [g["name"] for g in page["items"]] == ["Alpha", "beta", "delta-ops"]
    rest = owner_api.get(f"/groups?limit=3&cursor={page['next']}").json()
    assert [g["name"] for g in rest["items"]] == ["gamma"] and rest["next"] is None
    assert [g["name"] for g in owner_api.get("/groups?q=ops").json()["items"]] == ["delta-ops"]


def test_members_and_applications(org: Org, owner_api: API) -> None:
    group = GroupFactory(organization=org.organization, name="readers")
    robot = ApplicationFactory(organization=org.organization, name="robot")
    path = f"/groups/{group.pk}"

    before = version(org.organization)
    for membership in (org.tech, org.billing, org.readonly):
        response = call(owner_api, "PUT", f"{path}/members/{membership.pk}")
        assert response.status_code == 200, response.content
    assert response.json()["member_count"] == 3
    assert last_event(org.organization, events.GROUP_MEMBER_ADDED).target_id == str(group.pk)
    assert version(org.organization) > before

    page = owner_api.get(f"{path}/members?limit=2").json()
    rest = owner_api.get(f"{path}/members?limit=2&cursor={page['next']}").json()
    emails = [m["email"] for m in page["items"] + rest["items"]]
    assert emails == sorted(m.user.email for m in (org.tech, org.billing, org.readonly))

    response = call(owner_api, "DELETE", f"{path}/members/{org.tech.pk}")
    assert response.status_code == 200 and response.json()["member_count"] == 2
    last_event(org.organization, events.GROUP_MEMBER_REMOVED)

    response = call(owner_api, "PUT", f"{path}/applications/{robot.pk}")
    assert response.status_code == 200 and response.json()["application_count"] == 1
    last_event(org.organization, events.GROUP_APPLICATION_ADDED)
    listed = owner_api.get(f"{path}/applications").json()
    assert listed == {"items": [{"id": str(robot.pk), "name": "robot"}], "next": None}
    before = version(org.organization)
    response = call(owner_api, "DELETE", f"{path}/applications/{robot.pk}")
    assert response.status_code == 200 and response.json()["application_count"] == 0
    last_event(org.organization, events.GROUP_APPLICATION_REMOVED)
    assert version(org.organization) > before

    # Another organization's user or application does not exist here.
    stranger = MembershipFactory()
    assert call(owner_api, "PUT", f"{path}/members/{stranger.pk}").status_code == 404
    foreign = ApplicationFactory()
    assert call(owner_api, "PUT", f"{path}/applications/{foreign.pk}").status_code == 404


def test_the_delegation_ceiling_refuses_through_the_api(org: Org) -> None:
    """An IAM manager may change groups, but not give itself BillingAccess by joining."""
    manager = MembershipFactory(organization=org.organization)
    allow(manager, "iam:*")
    group = GroupFactory(organization=org.organization, name="billing")
    attach_managed(group, "BillingAccess")
    before = version(org.organization)
    response = call(
        API(key_token(manager, manager)), "PUT", f"/groups/{group.pk}/members/{manager.pk}"
    )
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "delegation_refused"
    assert error["details"]["exceeding"]
    assert not group.members.filter(pk=manager.pk).exists()
    assert version(org.organization) == before


OPERATIONS: list[tuple[str, str, Any, str]] = [
    ("GET", "/groups", None, "iam:groups:list"),
    ("POST", "/groups", {"name": "new-group"}, "iam:groups:create"),
    ("GET", "/groups/{id}", None, "iam:groups:read"),
    ("GET", "/groups/{id}/members", None, "iam:groups:read"),
    ("GET", "/groups/{id}/applications", None, "iam:groups:read"),
    ("PATCH", "/groups/{id}", {"description": "x"}, "iam:groups:update"),
    ("DELETE", "/groups/{id}", None, "iam:groups:delete"),
    ("PUT", "/groups/{id}/members/{member}", None, "iam:groups:update"),
    ("DELETE", "/groups/{id}/members/{member}", None, "iam:groups:update"),
    ("PUT", "/groups/{id}/applications/{app}", None, "iam:groups:update"),
    ("DELETE", "/groups/{id}/applications/{app}", None, "iam:groups:update"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "path", "body", "action"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, path: str, body: Any, action: str) -> None:
    target = GroupFactory(organization=org.organization, name="target")
    member = MembershipFactory(organization=org.organization)
    app = ApplicationFactory(organization=org.organization)
    if method == "DELETE" and "/members/" in path:
        target.members.add(member)
    if method == "DELETE" and "/applications/" in path:
        target.applications.add(app)
    url = path.format(id=target.pk, member=member.pk, app=app.pk)
    response = call(persona_api(org, who), method, url, body)
    if who == "outsider" and method == "POST":
        assert response.status_code == 201  # in its own organization
        return
    check_role(org, who, response, action, listing=path == "/groups")
    if who == "outsider" and path == "/groups":
        assert response.json()["items"] == []
