"""`/api/v1/applications`: list, create, read, update, delete, through the console's
services, audited with the key as the actor, each allowed exactly as the evaluator
decides for the key's bearer."""

from __future__ import annotations

from typing import Any

import pytest

from audit import events
from organizations.models import Application
from tests.api.conftest import (
    API,
    PERSONAS,
    allowed,
    call,
    key_token,
    last_event,
    persona_api,
    version,
)
from tests.conftest import Org
from tests.factories import ApplicationFactory

pytestmark = pytest.mark.django_db


def test_list_pages_with_a_cursor(org: Org) -> None:
    api = persona_api(org, "owner")
    made = [ApplicationFactory(organization=org.organization, name=f"app-{i}") for i in range(3)]
    first = api.get("/applications?limit=2")
    assert first.status_code == 200, first.content
    body = first.json()
    assert [a["name"] for a in body["items"]] == ["app-0", "app-1"]
    assert body["next"]
    second = api.get(f"/applications?limit=2&cursor={body['next']}").json()
    assert [a["id"] for a in second["items"]] == [str(made[2].pk)]
    assert second["next"] is None
    assert api.get("/applications?cursor=junk!").status_code == 400
    assert api.get("/applications?limit=101").status_code == 422


def test_create_read_update_delete(org: Org) -> None:
    api = persona_api(org, "owner")
    created = api.post("/applications", {"name": "ci", "description": "deploys"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "ci" and body["description"] == "deploys"
    application = Application.objects.get(pk=body["id"], organization=org.organization)
    assert last_event(org.organization, events.APPLICATION_CREATED).target_id == str(application.pk)
    assert api.get(f"/applications/{application.pk}").json()["name"] == "ci"

    updated = call(api, "PATCH", f"/applications/{application.pk}", {"name": "ci-2"})
    assert updated.status_code == 200, updated.content
    assert updated.json()["name"] == "ci-2" and updated.json()["description"] == "deploys"
    assert last_event(org.organization, events.APPLICATION_UPDATED).data["after"]["name"] == "ci-2"

    refused = call(api, "DELETE", f"/applications/{application.pk}", {"confirm_name": "ci"})
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {
        "confirm_name": ["Type the application name exactly to confirm."]
    }
    before = version(org.organization)
    deleted = call(api, "DELETE", f"/applications/{application.pk}", {"confirm_name": "ci-2"})
    assert deleted.status_code == 204, deleted.content
    assert not Application.objects.filter(pk=application.pk).exists()
    assert last_event(org.organization, events.APPLICATION_DELETED)
    assert version(org.organization) == before + 1


def test_duplicate_name_is_a_400(org: Org) -> None:
    ApplicationFactory(organization=org.organization, name="ci")
    response = persona_api(org, "owner").post("/applications", {"name": "CI"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_an_application_key_is_recorded_as_the_actor(org: Org) -> None:
    robot = ApplicationFactory(organization=org.organization)
    from tests.api.conftest import allow

    allow(robot, "iam:applications:create", scope="organization")
    response = API(key_token(robot, org.owner)).post("/applications", {"name": "made-by-robot"})
    assert response.status_code == 201, response.content
    event = last_event(org.organization, events.APPLICATION_CREATED)
    assert event.actor_user is None


OPERATIONS = [
    ("GET", "/applications", None, "iam:applications:list"),
    ("POST", "/applications", {"name": "new-app"}, "iam:applications:create"),
    ("GET", "/applications/{id}", None, "iam:applications:read"),
    ("PATCH", "/applications/{id}", {"description": "x"}, "iam:applications:update"),
    ("DELETE", "/applications/{id}", {"confirm_name": "target"}, "iam:applications:delete"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "path", "body", "action"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, path: str, body: Any, action: str) -> None:
    target = ApplicationFactory(organization=org.organization, name="target")
    response = call(persona_api(org, who), method, path.format(id=target.pk), body)
    if who == "outsider":
        # Its own organization's list, or another organization's application: 404.
        assert response.status_code == (
            200 if path == "/applications" and method == "GET" else 201 if method == "POST" else 404
        )
        if method == "GET" and path == "/applications":
            assert response.json()["items"] == []
        return
    if allowed(getattr(org, who), action):
        assert response.status_code in (200, 201, 204), response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == action


def test_fields_longer_than_their_columns_are_422(org: Org) -> None:
    """The schema's limits are the model's (name 64, description 1000), not 200 and 2000."""
    api = API(key_token(org.owner, org.owner))
    assert api.post("/applications", {"name": "a" * 65}).status_code == 422
    assert api.post("/applications", {"name": "a", "description": "d" * 1001}).status_code == 422
    app = ApplicationFactory(organization=org.organization)
    assert call(api, "PATCH", f"/applications/{app.pk}", {"name": "a" * 65}).status_code == 422
    assert api.post("/applications", {"name": "a" * 64}).status_code == 201
