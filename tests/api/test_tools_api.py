"""The simulator and effective permissions through the API: the console's tools, decided by
the same evaluator path."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from policies.authz import decide_for
from policies.evaluator import RequestFacts
from policies.models import Rule
from tests.api.conftest import API, allow, key_token
from tests.conftest import Org
from tests.factories import ApplicationFactory, ProjectFactory, ResourceFactory

pytestmark = pytest.mark.django_db


def user(membership: Any) -> dict[str, str]:
    return {"type": "user", "id": str(membership.user_id)}


@pytest.fixture
def owner(org: Org) -> API:
    return API(key_token(org.owner, org.owner))


def simulate(api: API, principal: dict[str, str], action: str, **more: Any) -> Any:
    return api.post("/simulator", {"principal": principal, "action": action, **more})


def test_simulator_decides_with_explanation(org: Org, owner: API) -> None:
    allowed = simulate(owner, user(org.tech), "projects:projects:create")
    assert allowed.status_code == 200
    body = allowed.json()
    assert (body["allowed"], body["reason"]) == (True, "explicit_allow")
    assert body["deciding_rule"]["policy_name"] == "TechAccess"
    denied = simulate(owner, user(org.billing), "iam:users:list").json()
    assert (denied["allowed"], denied["reason"]) == (False, "implicit_deny")
    assert "iam:users:list" in denied["explanation"]
    # Simulating a denial is not the caller's denial: nothing is audited.
    assert not AuditEvent.objects.filter(action="authz.access.denied").exists()


def test_simulator_uses_the_given_context_and_project(org: Org, owner: API) -> None:
    application = ApplicationFactory(organization=org.organization)
    project = ProjectFactory(organization=org.organization)
    allow(
        application,
        "compute:instances:list",
        scope=Rule.Scope.ALL_PROJECTS,
        condition='ip_in_range(request.ip, "10.0.0.0/8")',
    )
    principal = {"type": "application", "id": str(application.pk)}
    inside = simulate(
        owner,
        principal,
        "compute:instances:list",
        project=str(project.pk),
        context={"ip": "10.1.2.3", "time": timezone.now().isoformat()},
    )
    assert inside.json()["allowed"] is True
    outside = simulate(
        owner,
        principal,
        "compute:instances:list",
        project=str(project.pk),
        context={"ip": "8.8.8.8"},
    )
    assert outside.json()["allowed"] is False


def test_simulator_refuses_other_organizations_and_bad_input(org: Org, owner: API) -> None:
    stranger = {"type": "user", "id": str(org.outsider.pk)}
    assert simulate(owner, stranger, "iam:users:list").status_code == 404
    elsewhere = ProjectFactory()
    response = simulate(owner, user(org.tech), "compute:instances:list", project=str(elsewhere.pk))
    assert response.status_code == 404
    bad = simulate(owner, user(org.tech), "iam:users:list", context={"ip": "nowhere"})
    assert bad.status_code == 422


def test_effective_permissions_of_a_user_and_an_application(org: Org, owner: API) -> None:
    body = owner.get(f"/effective-permissions/users/{org.billing.user_id}").json()
    assert body["principal"] == user(org.billing) and body["is_owner"] is False
    actions = {permission["action"] for permission in body["permissions"]}
    assert "billing:invoices:read" in actions and "iam:users:list" not in actions
    assert all("BillingAccess" in p["via"] for p in body["permissions"])

    application = ApplicationFactory(organization=org.organization)
    allow(application, "iam:users:list", scope=Rule.Scope.ORGANIZATION)
    body = owner.get(f"/effective-permissions/applications/{application.pk}").json()
    assert [p["action"] for p in body["permissions"]] == ["iam:users:list"]
    owner_body = owner.get(f"/effective-permissions/users/{org.owner.user_id}").json()
    assert owner_body["is_owner"] and {p["via"] for p in owner_body["permissions"]} == {"owner"}


OPERATIONS = {
    "simulator": (
        "iam:simulator:use",
        lambda api, org, app: simulate(api, user(org.tech), "iam:users:list"),
    ),
    "effective_user": (
        "iam:users:read",
        lambda api, org, app: api.get(f"/effective-permissions/users/{org.tech.user_id}"),
    ),
    "effective_application": (
        "iam:applications:read",
        lambda api, org, app: api.get(f"/effective-permissions/applications/{app.pk}"),
    ),
}


@pytest.mark.parametrize("who", ["owner", "tech", "billing", "readonly", "outsider"])
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_role_matrix(org: Org, who: str, name: str) -> None:
    action, call = OPERATIONS[name]
    application = ApplicationFactory(organization=org.organization)
    if who == "outsider":
        membership = org.outsider.memberships.get()
        response = call(API(key_token(membership, membership)), org, application)
        assert response.status_code == 404
        return
    membership = getattr(org, who)
    facts = RequestFacts(ip="127.0.0.1", user_agent="", time=timezone.now(), mfa=False)
    expected = decide_for(membership, action, None, facts).allowed
    response = call(API(key_token(membership, membership)), org, application)
    if expected:
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == action


# ------------------------------------------------------------------- on a resource

TEAM = 'resource.tags["team"] == principal.tags["team"]'


@pytest.fixture
def team_app(org: Org) -> Any:
    """An application tagged team=web, allowed on the instances of its team."""
    application = ApplicationFactory(organization=org.organization, tags={"team": "web"})
    allow(application, "compute:instances:*", scope=Rule.Scope.ALL_PROJECTS, condition=TEAM)
    return application


def app(application: Any) -> dict[str, str]:
    return {"type": "application", "id": str(application.pk)}


def test_simulator_on_a_registered_resource_explains_the_tag(
    org: Org, owner: API, team_app: Any
) -> None:
    web = ResourceFactory(project__organization=org.organization, tags={"team": "web"})
    data = ResourceFactory(project=web.project, tags={"team": "data"})
    on = {"type": "compute:instances", "id": str(web.pk)}
    body = simulate(owner, app(team_app), "compute:instances:update", resource=on).json()
    assert body["allowed"] is True
    assert 'resource.tags["team"] is "web"' in body["explanation"]
    on = {"type": "compute:instances", "id": str(data.pk)}
    body = simulate(owner, app(team_app), "compute:instances:update", resource=on).json()
    assert body["allowed"] is False
    (report,) = body["condition_reports"]
    assert report["condition"] == TEAM and '"data"' in report["text"]


def test_simulator_on_a_resource_not_registered_yet(org: Org, owner: API, team_app: Any) -> None:
    project = ProjectFactory(organization=org.organization)

    def create(tags: dict[str, str]) -> Any:
        on = {"type": "compute:instances", "project": str(project.pk), "tags": tags}
        response = simulate(owner, app(team_app), "compute:instances:create", resource=on)
        assert response.status_code == 200, response.content
        return response.json()

    assert create({"team": "web"})["allowed"] is True
    assert create({"team": "data"})["allowed"] is False
    assert create({})["allowed"] is False


def test_simulator_refuses_foreign_resources_and_wrong_actions(
    org: Org, owner: API, team_app: Any
) -> None:
    foreign = ResourceFactory()
    on = {"type": "compute:instances", "id": str(foreign.pk)}
    assert simulate(owner, app(team_app), "compute:instances:read", resource=on).status_code == 404
    elsewhere = {"type": "compute:instances", "project": str(foreign.project_id)}
    response = simulate(owner, app(team_app), "compute:instances:create", resource=elsewhere)
    assert response.status_code == 404
    bucket = ResourceFactory(project__organization=org.organization, type="storage:buckets")
    on = {"type": "storage:buckets", "id": str(bucket.pk)}
    wrong = simulate(owner, app(team_app), "compute:instances:read", resource=on)
    assert wrong.status_code == 422
    error = wrong.json()["error"]
    assert error["details"]["action"][0].startswith(
        "compute:instances:read is not an action on buckets"
    )
    mistyped = {"type": "compute:instances", "id": str(bucket.pk)}
    response = simulate(owner, app(team_app), "compute:instances:read", resource=mistyped)
    assert response.status_code == 404  # no instance has that id (as POST /authorize says)
    no_project = {"type": "compute:instances", "tags": {"team": "web"}}
    response = simulate(owner, app(team_app), "compute:instances:create", resource=no_project)
    assert response.status_code == 422
    bad_tag = {"type": "compute:instances", "project": str(bucket.project_id), "tags": {"a b": ""}}
    response = simulate(owner, app(team_app), "compute:instances:create", resource=bad_tag)
    assert response.status_code == 422


def test_effective_permissions_on_a_resource(org: Org, owner: API, team_app: Any) -> None:
    web = ResourceFactory(project__organization=org.organization, tags={"team": "web"})
    path = f"/effective-permissions/applications/{team_app.pk}"
    body = owner.get(f"{path}?resource={web.pk}").json()
    assert body["resource"] == {
        "type": "compute:instances",
        "id": str(web.pk),
        "project": str(web.project_id),
        "tags": {"team": "web"},
    }
    decided = {d["action"]: d for d in body["decisions"]}
    assert len(decided) == 5 and all(d["allowed"] for d in decided.values())
    assert 'resource.tags["team"] is "web"' in decided["compute:instances:read"]["explanation"]
    tags = "%7B%22team%22:%22db%22%7D"  # {"team":"db"}
    query = f"resource_type=compute:instances&project={web.project_id}&tags={tags}"
    body = owner.get(f"{path}?{query}").json()
    assert body["resource"]["id"] is None
    assert not any(d["allowed"] for d in body["decisions"])
    assert owner.get(path).json()["decisions"] == []  # no resource, no per-action table


def test_effective_permissions_refuse_foreign_resources(org: Org, owner: API) -> None:
    foreign = ResourceFactory()
    path = f"/effective-permissions/users/{org.tech.user_id}"
    assert owner.get(f"{path}?resource={foreign.pk}").status_code == 404
    assert owner.get(f"{path}?resource_type=nope&project={foreign.project_id}").status_code == 422
    response = owner.get(f"{path}?resource_type=dns:zones&project={foreign.project_id}")
    assert response.status_code == 404
    assert owner.get(f"{path}?tags=%7B%7D&project={foreign.project_id}").status_code == 422
