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
from tests.factories import ApplicationFactory, ProjectFactory

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
