"""`/api/v1/users`: list (the console's filters, cursor paging), read, suspend, reactivate,
remove, through the console's selectors and services, audited with the key as the actor,
each allowed exactly as the evaluator decides for the key's bearer."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import events
from organizations.models import Membership
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
from tests.factories import ApplicationFactory, GroupFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


# Users.


@pytest.fixture
def owner_api(org: Org) -> API:
    return API(key_token(org.owner, org.owner))


def test_list_filters_and_pages(org: Org, owner_api: API) -> None:
    group = GroupFactory(organization=org.organization)
    group.members.add(org.tech)
    TOTPDevice.objects.create(user=org.billing.user, name="app", confirmed=True)
    response = owner_api.get("/users?limit=3")
    assert response.status_code == 200, response.content
    first = response.json()
    assert len(first["items"]) == 3 and first["next"]
    second = owner_api.get(f"/users?limit=3&cursor={first['next']}").json()
    assert second["next"] is None
    emails = [u["email"] for u in first["items"] + second["items"]]
    assert emails == sorted(m.user.email for m in org.organization.memberships.all())
    tech = next(u for u in first["items"] + second["items"] if u["id"] == str(org.tech.pk))
    assert tech["groups"] == [{"id": str(group.pk), "name": group.name}]
    assert [p["name"] for p in tech["policies"]] == ["TechAccess"]
    assert tech["kind"] == "guest" and tech["status"] == "active"

    def ids(query: str) -> set[str]:
        response = owner_api.get(f"/users?{query}")
        assert response.status_code == 200, response.content
        return {u["id"] for u in response.json()["items"]}

    assert ids(f"group={group.pk}") == {str(org.tech.pk)}
    assert ids("kind=owner") == {str(org.owner.pk)}
    assert ids("mfa=yes") == {str(org.billing.pk)}
    assert ids(f"q={org.readonly.user.email}") == {str(org.readonly.pk)}
    assert owner_api.get("/users?cursor=junk").status_code == 400
    assert owner_api.get("/users?limit=101").status_code == 422


def test_read(org: Org, owner_api: API) -> None:
    body = owner_api.get(f"/users/{org.billing.pk}").json()
    assert body["email"] == org.billing.user.email
    assert body["user_id"] == str(org.billing.user_id)
    assert owner_api.get("/users/not-a-uuid").status_code == 422


def test_suspend_reactivate_remove_are_audited_and_bump(org: Org, owner_api: API) -> None:
    before = version(org.organization)
    response = owner_api.post(f"/users/{org.tech.pk}/suspend", {})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "suspended"
    assert last_event(org.organization, events.USER_SUSPENDED).target_id == str(org.tech.pk)
    assert version(org.organization) > before

    before = version(org.organization)
    response = owner_api.post(f"/users/{org.tech.pk}/reactivate", {})
    assert response.status_code == 200 and response.json()["status"] == "active"
    last_event(org.organization, events.USER_REACTIVATED)
    assert version(org.organization) > before

    before = version(org.organization)
    response = call(owner_api, "DELETE", f"/users/{org.tech.pk}")
    assert response.status_code == 204, response.content
    assert not Membership.objects.filter(pk=org.tech.pk).exists()
    last_event(org.organization, events.USER_REMOVED)
    assert version(org.organization) > before


def test_service_rules_answer_400(org: Org, owner_api: API) -> None:
    response = owner_api.post(f"/users/{org.owner.pk}/suspend", {})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "yourself" in response.json()["error"]["message"]


def test_an_application_key_suspends_reactivates_and_removes_users(org: Org) -> None:
    """A directory sync offboards people with its application's key: audited as the key,
    held to the delegation ceiling like anyone else, never acting on owners."""
    robot = ApplicationFactory(organization=org.organization)
    allow(robot, "iam:users:suspend", "iam:users:remove")
    api = API(key_token(robot, org.owner))

    suspended = api.post(f"/users/{org.tech.pk}/suspend", {})
    assert suspended.status_code == 200, suspended.content
    assert suspended.json()["status"] == "suspended"
    assert last_event(org.organization, events.USER_SUSPENDED).target_label == org.tech.user.email

    # Reactivating gives back TechAccess, which the application does not hold.
    refused = api.post(f"/users/{org.tech.pk}/reactivate", {})
    assert refused.status_code == 403, refused.content
    assert refused.json()["error"]["code"] == "delegation_refused"
    assert Membership.objects.get(pk=org.tech.pk).status == "suspended"

    owner = api.post(f"/users/{org.owner.pk}/suspend", {})
    assert owner.status_code == 400 and "Only owners" in owner.json()["error"]["message"]

    assert call(api, "DELETE", f"/users/{org.readonly.pk}").status_code == 204
    assert not Membership.objects.filter(pk=org.readonly.pk).exists()
    assert last_event(org.organization, events.USER_REMOVED).actor_type == "api_key"


OPERATIONS = [
    ("GET", "/users", "iam:users:list"),
    ("GET", "/users/{id}", "iam:users:read"),
    ("POST", "/users/{id}/suspend", "iam:users:suspend"),
    ("POST", "/users/{id}/reactivate", "iam:users:suspend"),
    ("DELETE", "/users/{id}", "iam:users:remove"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "path", "action"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, path: str, action: str) -> None:
    target = MembershipFactory(organization=org.organization, user=UserFactory())
    response = call(persona_api(org, who), method, path.format(id=target.pk), None)
    check_role(org, who, response, action, listing=path == "/users")
    if who == "outsider" and path == "/users":
        assert str(target.pk) not in {u["id"] for u in response.json()["items"]}
