"""`/api/v1/projects`: list (the readable ones), create, read, update, delete; read, update
and delete are decided in the project of the path."""

from __future__ import annotations

from typing import Any

import pytest

from audit import events
from organizations.models import Membership, Project
from policies.models import Rule
from tests.api.conftest import (
    API,
    PERSONAS,
    allow,
    allowed,
    call,
    key_token,
    last_event,
    persona_api,
    version,
)
from tests.conftest import Org
from tests.factories import ApplicationFactory, MembershipFactory, ProjectFactory, grant

pytestmark = pytest.mark.django_db


def test_create_read_update_delete(org: Org) -> None:
    api = persona_api(org, "owner")
    created = api.post("/projects", {"name": "web", "description": "site"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "web" and body["is_default"] is False
    assert last_event(org.organization, events.PROJECT_CREATED).target_id == body["id"]
    assert api.get(f"/projects/{body['id']}").json()["description"] == "site"
    updated = call(api, "PATCH", f"/projects/{body['id']}", {"name": "www"})
    assert updated.status_code == 200 and updated.json()["name"] == "www"
    assert updated.json()["description"] == "site"
    assert last_event(org.organization, events.PROJECT_UPDATED)
    refused = call(api, "DELETE", f"/projects/{body['id']}", {"confirm_name": "web"})
    assert refused.status_code == 400
    assert "confirm_name" in refused.json()["error"]["details"]
    assert call(api, "DELETE", f"/projects/{body['id']}", {}).status_code == 422
    before = version(org.organization)
    deleted = call(api, "DELETE", f"/projects/{body['id']}", {"confirm_name": "www"})
    assert deleted.status_code == 204, deleted.content
    assert not Project.objects.filter(pk=body["id"]).exists()
    assert last_event(org.organization, events.PROJECT_DELETED)
    assert version(org.organization) == before + 1


def test_the_default_project_stays(org: Org) -> None:
    default = Project.objects.get(organization=org.organization, is_default=True)
    response = call(
        persona_api(org, "owner"), "DELETE", f"/projects/{default.pk}", {"confirm_name": "default"}
    )
    assert response.status_code == 400


def test_list_shows_only_readable_projects_and_pages(org: Org) -> None:
    web = ProjectFactory(organization=org.organization, name="web")
    ProjectFactory(organization=org.organization, name="hidden")
    member = MembershipFactory(organization=org.organization)
    grant(member, actions=["projects:projects:list"])
    grant(member, actions=["projects:projects:read"], projects=[web])
    api = API(key_token(member, member))
    assert [p["name"] for p in api.get("/projects").json()["items"]] == ["web"]
    hidden = Project.objects.get(name="hidden")
    denied = api.get(f"/projects/{hidden.pk}")
    assert denied.status_code == 403
    assert denied.json()["error"]["details"]["permission"] == "projects:projects:read"
    assert api.get(f"/projects/{web.pk}").status_code == 200

    owner_api = persona_api(org, "owner")
    first = owner_api.get("/projects?limit=2").json()
    second = owner_api.get(f"/projects?limit=2&cursor={first['next']}").json()
    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next"] is None


def test_an_application_key_lists_what_its_application_may_read(org: Org) -> None:
    web = ProjectFactory(organization=org.organization, name="web")
    ProjectFactory(organization=org.organization, name="hidden")
    robot = ApplicationFactory(organization=org.organization)
    allow(robot, "projects:projects:list", scope=Rule.Scope.ORGANIZATION)
    allow(robot, "projects:projects:read", scope=Rule.Scope.PROJECTS)
    Rule.objects.filter(
        policy__attachments__application=robot, scope="projects"
    ).get().projects.set([web])
    response = API(key_token(robot, org.owner)).get("/projects")
    assert response.status_code == 200, response.content
    assert [p["name"] for p in response.json()["items"]] == ["web"]


OPERATIONS = [
    ("GET", "/projects", None, "projects:projects:list"),
    ("POST", "/projects", {"name": "new"}, "projects:projects:create"),
    ("GET", "/projects/{id}", None, "projects:projects:read"),
    ("PATCH", "/projects/{id}", {"description": "x"}, "projects:projects:update"),
    ("DELETE", "/projects/{id}", {"confirm_name": "target"}, "projects:projects:delete"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "path", "body", "action"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, path: str, body: Any, action: str) -> None:
    target = ProjectFactory(organization=org.organization, name="target")
    response = call(persona_api(org, who), method, path.format(id=target.pk), body)
    if who == "outsider":
        expected = {"/projects": 201 if method == "POST" else 200}.get(path, 404)
        assert response.status_code == expected, response.content
        if method == "GET" and path == "/projects":
            own = Membership.objects.get(user=org.outsider).organization
            assert {p["id"] for p in response.json()["items"]} == {
                str(p.pk) for p in own.projects.all()
            }
        return
    project = target.pk if "{id}" in path else None
    if allowed(getattr(org, who), action, project):
        assert response.status_code in (200, 201, 204), response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == action


def test_a_name_longer_than_the_column_is_422_not_a_database_error(org: Org) -> None:
    """Found by schemathesis on PostgreSQL: a 200-character name passed the schema and
    overflowed the 64-character column (500)."""
    api = API(key_token(org.owner, org.owner))
    assert api.post("/projects", {"name": "p" * 65}).status_code == 422
    web = ProjectFactory(organization=org.organization)
    assert call(api, "PATCH", f"/projects/{web.pk}", {"name": "p" * 65}).status_code == 422
    assert api.post("/projects", {"name": "p" * 64}).status_code == 201
