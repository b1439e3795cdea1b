"""`/api/v1/api-keys`: list (with `mine`), create for yourself or an application (the token
once), enable a disabled key (with iam:api-keys:delete), delete (own, or any with
iam:api-keys:delete)."""

from __future__ import annotations

from typing import Any

import pytest

from audit import events
from audit.models import AuditEvent
from organizations.models import APIKey, Membership
from organizations.services import api_keys as api_key_services
from tests.api.conftest import (
    API,
    PERSONAS,
    allow,
    allowed,
    call,
    key_token,
    last_event,
    persona_api,
)
from tests.conftest import Org
from tests.factories import ApplicationFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_create_for_yourself_returns_a_working_token_once(org: Org) -> None:
    api = persona_api(org, "owner")
    project = ProjectFactory(organization=org.organization)
    response = api.post(
        "/api-keys",
        {"description": "laptop", "expires_on": "2999-01-01", "default_project": str(project.pk)},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["bearer"] == {
        "type": "user",
        "id": str(org.owner.user_id),
        "label": org.owner.user.email,
    }
    assert body["description"] == "laptop" and body["default_project"] == str(project.pk)
    assert body["token"].startswith(body["access_key"] + ".")
    assert API(body["token"]).get("/me").json()["api_key"]["id"] == body["id"]
    event = last_event(org.organization, events.API_KEY_CREATED)
    assert event.target_id == body["id"]
    listed = api.get("/api-keys?mine=true").json()["items"]
    assert all("token" not in item for item in listed)


def test_create_for_an_application(org: Org) -> None:
    robot = ApplicationFactory(organization=org.organization, name="robot")
    response = persona_api(org, "owner").post(
        "/api-keys", {"bearer": {"type": "application", "id": str(robot.pk)}}
    )
    assert response.status_code == 201, response.content
    assert response.json()["bearer"]["label"] == "robot"
    assert APIKey.objects.get(pk=response.json()["id"]).bearer_application == robot


def test_nobody_creates_a_key_for_another_person(org: Org) -> None:
    response = persona_api(org, "owner").post(
        "/api-keys", {"bearer": {"type": "user", "id": str(org.tech.user_id)}}
    )
    assert response.status_code == 400
    assert "bearer" in response.json()["error"]["details"]


def test_an_application_key_cannot_create_keys(org: Org) -> None:
    robot = ApplicationFactory(organization=org.organization)
    allow(robot, "iam:api-keys:create", scope="organization")
    api = API(key_token(robot, org.owner))
    for bearer in (None, {"type": "user", "id": str(org.owner.user_id)}):
        response = api.post("/api-keys", {"bearer": bearer})
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "user_key_required"
    assert APIKey.objects.filter(bearer_application=robot).count() == 1


def test_unknown_bearer_or_project_is_a_404(org: Org) -> None:
    other = Membership.objects.get(user=org.outsider)
    api = persona_api(org, "owner")
    stranger = {"bearer": {"type": "user", "id": str(org.outsider.pk)}}
    assert api.post("/api-keys", stranger).status_code == 404
    other_project = ProjectFactory(organization=other.organization)
    assert api.post("/api-keys", {"default_project": str(other_project.pk)}).status_code == 404


def test_list_filters_mine_and_pages(org: Org) -> None:
    for _ in range(2):
        key_token(org.tech, org.tech)
    key_token(org.billing, org.billing)
    api = persona_api(org, "owner")
    everything = api.get("/api-keys?limit=100").json()
    assert len(everything["items"]) == 4 and everything["next"] is None
    first = api.get("/api-keys?limit=3").json()
    rest = api.get(f"/api-keys?limit=3&cursor={first['next']}").json()
    assert [k["id"] for k in first["items"] + rest["items"]] == [
        k["id"] for k in everything["items"]
    ]
    mine = api.get("/api-keys?mine=true").json()["items"]
    assert [k["bearer"]["id"] for k in mine] == [str(org.owner.user_id)]


@pytest.mark.parametrize("who", PERSONAS)
def test_delete_own_key_always_others_with_the_permission(org: Org, who: str) -> None:
    membership = getattr(org, who)
    api = persona_api(org, who)
    own = APIKey.objects.filter(bearer_membership=membership).get()
    someone = org.tech if who == "billing" else org.billing
    key_token(someone, someone)
    others = APIKey.objects.filter(bearer_membership=someone).latest("created_at")
    response = call(api, "DELETE", f"/api-keys/{others.pk}")
    if allowed(membership, "iam:api-keys:delete"):
        assert response.status_code == 204
        assert last_event(org.organization, events.API_KEY_DELETED).target_id == str(others.pk)
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == "iam:api-keys:delete"
        assert APIKey.objects.filter(pk=others.pk).exists()
    assert call(api, "DELETE", f"/api-keys/{own.pk}").status_code == 204
    assert not APIKey.objects.filter(pk=own.pk).exists()
    # The key revoked itself: it no longer opens anything.
    assert api.get("/me").status_code == 401


def _disabled_key(org: Org) -> APIKey:
    token = key_token(ApplicationFactory(organization=org.organization), org.owner)
    api_key = APIKey.objects.get(access_key=token.partition(".")[0])
    api_key_services.api_key_disable(api_key=api_key, actor=None, reason="unused for 30 days")
    return api_key


@pytest.mark.parametrize("who", PERSONAS)
def test_enable_a_disabled_key_with_the_permission(org: Org, who: str) -> None:
    api_key = _disabled_key(org)
    api = persona_api(org, who)
    if allowed(getattr(org, who), "iam:api-keys:list"):  # the list says why it is refused
        items = api.get("/api-keys?limit=100").json()["items"]
        listed = next(k for k in items if k["id"] == str(api_key.pk))
        assert listed["disabled_reason"] == "unused for 30 days" and listed["disabled_at"]
    response = call(api, "POST", f"/api-keys/{api_key.pk}/enable")
    api_key.refresh_from_db()
    if allowed(getattr(org, who), "iam:api-keys:delete"):
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["disabled_at"] is None and body["disabled_reason"] == ""
        assert api_key.disabled_at is None
        event = last_event(org.organization, events.API_KEY_ENABLED)
        assert event.target_id == str(api_key.pk)
        assert event.data == {"disabled_for": "unused for 30 days"}
        # Enabling an enabled key answers it as it is, with no new event.
        again = call(api, "POST", f"/api-keys/{api_key.pk}/enable")
        assert again.status_code == 200 and again.json()["disabled_at"] is None
        assert AuditEvent.objects.filter(action=events.API_KEY_ENABLED.name).count() == 1
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == "iam:api-keys:delete"
        assert api_key.disabled_at is not None


def test_enable_is_refused_beyond_the_callers_rights_and_404_elsewhere(org: Org) -> None:
    api_key = _disabled_key(org)
    allow(api_key.bearer_application, "billing:invoices:read")
    keeper = MembershipFactory(organization=org.organization)
    allow(keeper, "iam:api-keys:delete")
    response = call(API(key_token(keeper, keeper)), "POST", f"/api-keys/{api_key.pk}/enable")
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "delegation_refused"
    api_key.refresh_from_db()
    assert api_key.disabled_at is not None
    outsider = call(persona_api(org, "outsider"), "POST", f"/api-keys/{api_key.pk}/enable")
    assert outsider.status_code == 404
    api_key.refresh_from_db()
    assert api_key.disabled_at is not None


OPERATIONS: list[tuple[str, str, Any, str]] = [
    ("GET", "/api-keys", None, "iam:api-keys:list"),
    ("POST", "/api-keys", {"description": "x"}, "iam:api-keys:create"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "path", "body", "action"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, path: str, body: Any, action: str) -> None:
    response = call(persona_api(org, who), method, path, body)
    if who == "outsider" or allowed(getattr(org, who), action):
        assert response.status_code in (200, 201), response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == action


def test_outsider_gets_404_for_this_organizations_key(org: Org) -> None:
    key_id = API(key_token(org.tech, org.tech)).get("/me").json()["api_key"]["id"]
    assert call(persona_api(org, "outsider"), "DELETE", f"/api-keys/{key_id}").status_code == 404
    assert APIKey.objects.filter(pk=key_id).exists()


def test_a_description_longer_than_its_column_is_422(org: Org) -> None:
    """The description's limit is the model's 200 characters, not 1000 (a 500 on
    PostgreSQL)."""
    api = API(key_token(org.owner, org.owner))
    assert api.post("/api-keys", {"description": "d" * 201}).status_code == 422
    assert api.post("/api-keys", {"description": "d" * 200}).status_code == 201
