"""`/api/v1/projects/{id}/resources` and `/api/v1/resources/{id}` (#14): a platform
service's key registers, reads, updates and deletes resources; each operation needs the
resource type's own action in the project, as the console's resource pages do."""

from __future__ import annotations

from typing import Any

import pytest

from audit import events
from audit.models import AuditEvent
from organizations.models import Resource
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
from tests.factories import ApplicationFactory, ProjectFactory, ResourceFactory

pytestmark = pytest.mark.django_db


def test_create_read_list_update_delete(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    api = persona_api(org, "owner")
    body = {"type": "compute:instances", "name": " web-1 ", "tags": {"team": "web"}}
    created = api.post(f"/projects/{project.pk}/resources", body)
    assert created.status_code == 201, created.content
    resource = created.json()
    assert resource["name"] == "web-1" and resource["project"] == str(project.pk)
    assert resource["type"] == "compute:instances" and resource["tags"] == {"team": "web"}
    assert last_event(org.organization, events.RESOURCE_CREATED).target_id == resource["id"]

    read = api.get(f"/resources/{resource['id']}")
    assert read.status_code == 200 and read.json() == resource
    listed = api.get(f"/projects/{project.pk}/resources?type=compute:instances&q=team=web")
    assert [r["id"] for r in listed.json()["items"]] == [resource["id"]]
    other_type = api.get(f"/projects/{project.pk}/resources?type=dns:zones")
    assert other_type.json() == {"items": [], "next": None}

    before = version(org.organization)
    updated = call(api, "PATCH", f"/resources/{resource['id']}", {"tags": {"team": "data"}})
    assert updated.status_code == 200, updated.content
    assert updated.json()["name"] == "web-1" and updated.json()["tags"] == {"team": "data"}
    event = last_event(org.organization, events.RESOURCE_UPDATED)
    assert event.data == {"before": {"tags": {"team": "web"}}, "after": {"tags": {"team": "data"}}}
    assert version(org.organization) == before + 1

    deleted = call(api, "DELETE", f"/resources/{resource['id']}")
    assert deleted.status_code == 204, deleted.content
    assert not Resource.objects.filter(pk=resource["id"]).exists()
    assert last_event(org.organization, events.RESOURCE_DELETED).target_id == resource["id"]
    assert version(org.organization) == before + 2
    assert api.get(f"/resources/{resource['id']}").status_code == 404


def test_invalid_values_are_400_naming_the_field_and_schema_errors_422(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    api = persona_api(org, "owner")
    path = f"/projects/{project.pk}/resources"
    refused = api.post(path, {"type": "dns:zones", "name": "z", "tags": {"bad key": "x"}})
    assert refused.status_code == 400 and "tags" in refused.json()["error"]["details"]
    assert api.post(path, {"type": "compute:servers", "name": "x"}).status_code == 422
    assert api.post(path, {"type": "dns:zones", "name": "x" * 129}).status_code == 422
    assert api.post(path, {"type": "dns:zones", "name": "x", "extra": 1}).status_code == 422
    missing = api.get(path)
    assert missing.status_code == 422 and "type" in missing.json()["error"]["details"]
    assert not Resource.objects.exists()


def test_a_platform_service_acts_only_on_the_types_and_projects_granted(org: Org) -> None:
    """An application holding instances in project A only (not even the project's read)."""
    project_a = ProjectFactory(organization=org.organization, name="a")
    project_b = ProjectFactory(organization=org.organization, name="b")
    service = ApplicationFactory(organization=org.organization)
    allow(service, "compute:instances:*", scope=Rule.Scope.PROJECTS)
    Rule.objects.filter(policy__attachments__application=service).get().projects.set([project_a])
    api = API(key_token(service, org.owner))
    instance = {"type": "compute:instances", "name": "i-1"}
    created = api.post(f"/projects/{project_a.pk}/resources", instance)
    assert created.status_code == 201, created.content
    assert last_event(org.organization, events.RESOURCE_CREATED).actor_type == "api_key"

    bucket_body = {"type": "storage:buckets", "name": "b"}
    bucket = api.post(f"/projects/{project_a.pk}/resources", bucket_body)
    assert bucket.status_code == 403
    assert bucket.json()["error"]["details"]["permission"] == "storage:buckets:create"
    other_project = api.post(f"/projects/{project_b.pk}/resources", instance)
    assert other_project.status_code == 403
    assert other_project.json()["error"]["details"]["permission"] == "compute:instances:create"
    assert AuditEvent.objects.filter(
        action=events.ACCESS_DENIED.name, data__action="storage:buckets:create"
    ).exists()

    zone = ResourceFactory(project=project_a, type="dns:zones")
    denied = api.get(f"/resources/{zone.pk}")
    assert denied.status_code == 403
    assert denied.json()["error"]["details"]["permission"] == "dns:zones:read"
    listed = api.get(f"/projects/{project_a.pk}/resources?type=storage:buckets")
    assert listed.json()["error"]["details"]["permission"] == "storage:buckets:list"


def test_another_organizations_project_and_resource_are_404(org: Org) -> None:
    theirs = ResourceFactory()
    api = persona_api(org, "owner")
    assert api.get(f"/resources/{theirs.pk}").status_code == 404
    assert call(api, "PATCH", f"/resources/{theirs.pk}", {"name": "x"}).status_code == 404
    assert call(api, "DELETE", f"/resources/{theirs.pk}").status_code == 404
    path = f"/projects/{theirs.project_id}/resources"
    assert api.get(f"{path}?type=compute:instances").status_code == 404
    assert api.post(path, {"type": "compute:instances", "name": "x"}).status_code == 404


def test_the_list_pages_and_runs_the_same_queries_for_3_or_60_resources(
    org: Org, django_assert_max_num_queries
) -> None:
    project = ProjectFactory(organization=org.organization)
    api = persona_api(org, "tech")
    path = f"/projects/{project.pk}/resources?type=compute:instances&limit=100"
    ResourceFactory.create_batch(3, project=project)
    api.get(path)  # compiles and caches the key's rules
    with django_assert_max_num_queries(20) as small:
        assert len(api.get(path).json()["items"]) == 3
    ResourceFactory.create_batch(57, project=project)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(api.get(path).json()["items"]) == 60

    first = api.get(f"/projects/{project.pk}/resources?type=compute:instances&limit=50").json()
    rest = api.get(
        f"/projects/{project.pk}/resources?type=compute:instances&limit=50&cursor={first['next']}"
    ).json()
    ids = [r["id"] for r in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 60 and rest["next"] is None


OPERATIONS = [
    ("GET", "/projects/{project}/resources?type=storage:buckets", None, "list"),
    ("POST", "/projects/{project}/resources", {"type": "storage:buckets", "name": "new"}, "create"),
    ("GET", "/resources/{resource}", None, "read"),
    ("PATCH", "/resources/{resource}", {"tags": {"env": "prod"}}, "update"),
    ("DELETE", "/resources/{resource}", None, "delete"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "path", "body", "verb"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, path: str, body: Any, verb: str) -> None:
    """Each persona as the evaluator decides the type's action in the project; the
    outsider gets 404."""
    project = ProjectFactory(organization=org.organization)
    bucket = ResourceFactory(project=project, type="storage:buckets", name="target")
    response = call(
        persona_api(org, who), method, path.format(project=project.pk, resource=bucket.pk), body
    )
    if who == "outsider":
        assert response.status_code == 404, response.content
        return
    member = getattr(org, who)
    action = f"storage:buckets:{verb}"
    if not allowed(member, action, project.pk):
        assert response.status_code == 403, response.content
        assert response.json()["error"]["details"]["permission"] == action
        return
    assert response.status_code in (200, 201, 204), response.content
