"""`POST /api/v1/authorize`: the evaluator's decisions for the organization's principals,
in batches of up to 100, for keys holding `iam:authorize:check`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from audit import events
from audit.models import AuditEvent
from organizations.models import Application, Membership, Resource
from organizations.services.organizations import organization_bump_authz_version
from organizations.services.people import membership_suspend
from organizations.services.resources import resource_update
from policies import authz
from policies.catalogue import EXPLICIT_ONLY, expand_pattern
from policies.models import Policy, PolicyAttachment, Rule
from tests.api.conftest import API, allow, key_token
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    MembershipFactory,
    ProjectFactory,
    ResourceFactory,
)

pytestmark = pytest.mark.django_db


def user(membership: Membership) -> dict[str, str]:
    return {"type": "user", "id": str(membership.user_id)}


def question(principal: dict[str, str], action: str, **more: Any) -> dict[str, Any]:
    return {"principal": principal, "action": action, **more}


def ask(api: API, *questions: dict[str, Any]) -> Any:
    return api.post("/authorize", {"questions": list(questions)})


def decisions(api: API, *questions: dict[str, Any]) -> list[dict[str, Any]]:
    response = ask(api, *questions)
    assert response.status_code == 200, response.content
    return response.json()["decisions"]


def test_answers_allowed_and_denied_with_explanations_in_order(org: Org, service_api: API) -> None:
    tech, billing, owner = user(org.tech), user(org.billing), user(org.owner)
    answers = decisions(
        service_api,
        question(tech, "projects:projects:create"),
        question(billing, "iam:users:list"),
        question(owner, "billing:invoices:read"),
        question(tech, "no:such:action"),
    )
    assert [a["allowed"] for a in answers] == [True, False, True, False]
    assert [a["reason"] for a in answers] == [
        "explicit_allow",
        "implicit_deny",
        "owner",
        "unknown_action",
    ]
    allowed = answers[0]
    assert allowed["deciding_rule"]["policy_name"] == "TechAccess"
    assert allowed["deciding_rule"]["effect"] == "allow"
    assert allowed["matched_rules"] == [allowed["deciding_rule"]]
    assert "TechAccess" in allowed["explanation"]
    assert "iam:users:list" in answers[1]["explanation"]
    assert answers[1]["matched_rules"] == [] and answers[1]["deciding_rule"] is None


def test_applications_and_projects_are_decided(org: Org, service_api: API) -> None:
    application = ApplicationFactory(organization=org.organization)
    web = ProjectFactory(organization=org.organization, name="web")
    other = ProjectFactory(organization=org.organization, name="other")
    policy = Policy.objects.create(organization=org.organization, name="web-instances")
    rule = Rule.objects.create(
        policy=policy,
        position=1,
        effect="allow",
        actions=["compute:instances:create"],
        scope=Rule.Scope.PROJECTS,
    )
    rule.projects.set([web])
    PolicyAttachment.objects.create(
        policy=policy, organization=org.organization, application=application
    )
    app = {"type": "application", "id": str(application.pk)}
    answers = decisions(
        service_api,
        question(app, "compute:instances:create", project=str(web.pk)),
        question(app, "compute:instances:create", project=str(other.pk)),
        question(app, "compute:instances:create"),  # in every project
    )
    assert [a["allowed"] for a in answers] == [True, False, False]


def test_the_request_context_reaches_conditions(org: Org, service_api: API) -> None:
    allow(
        org.billing,
        "iam:users:list",
        condition='ip_in_range(request.ip, "10.0.0.0/8") && request.mfa',
    )
    billing = user(org.billing)
    answers = decisions(
        service_api,
        question(billing, "iam:users:list", context={"ip": "10.1.2.3", "mfa": True}),
        question(billing, "iam:users:list", context={"ip": "203.0.113.5", "mfa": True}),
        question(billing, "iam:users:list", context={"ip": "10.1.2.3"}),
    )
    assert [a["allowed"] for a in answers] == [True, False, False]
    assert "203.0.113.5" in answers[1]["explanation"]


def test_the_request_time_is_read_with_its_offset(org: Org, service_api: API) -> None:
    allow(org.billing, "iam:users:list", condition="request.time.getHours() < 12")
    billing = user(org.billing)
    answers = decisions(
        service_api,
        question(billing, "iam:users:list", context={"time": "2026-01-05T09:00:00Z"}),
        question(billing, "iam:users:list", context={"time": "2026-01-05T09:00:00-05:00"}),
    )
    assert [a["allowed"] for a in answers] == [True, False]


def test_a_suspended_principal_is_denied_as_inactive(org: Org, service_api: API) -> None:
    Membership.objects.filter(pk=org.tech.pk).update(status=Membership.Status.SUSPENDED)
    (answer,) = decisions(service_api, question(user(org.tech), "projects:projects:list"))
    assert answer["allowed"] is False and answer["reason"] == "inactive"


def test_a_batch_of_100_is_answered_and_101_is_422(org: Org, service_api: API) -> None:
    batch = [question(user(org.tech), "projects:projects:list")] * 100
    assert len(decisions(service_api, *batch)) == 100
    response = ask(service_api, *batch, question(user(org.tech), "projects:projects:list"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "questions" in error["details"]
    assert ask(service_api).status_code == 422  # no question at all


@pytest.mark.parametrize(
    "context",
    [
        {"user_agent": "x" * 513},
        {"ip": "not-an-address"},
        {"ip": "1" * 46},
        {"time": "yesterday"},
        {"time": "2026-01-05T09:00:00"},  # no offset: which 09:00?
        {"MFA": True},  # a misspelt field is refused, not ignored
    ],
)
def test_bounded_and_well_formed_context_or_422(
    org: Org, service_api: API, context: dict[str, Any]
) -> None:
    response = ask(service_api, question(user(org.tech), "iam:users:list", context=context))
    assert response.status_code == 422, response.content
    assert set(response.json()["error"]) == {"code", "message", "details"}
    (field,) = response.json()["error"]["details"]
    assert field.startswith("questions.0.context")


def test_an_overlong_action_is_422(org: Org, service_api: API) -> None:
    response = ask(service_api, question(user(org.tech), "iam:" + "x" * 200))
    assert response.status_code == 422


def test_principals_or_projects_of_another_organization_are_404(org: Org, service_api: API) -> None:
    outsider = MembershipFactory()  # a member of another organization
    foreign_app = ApplicationFactory()
    foreign_project = ProjectFactory()
    response = ask(
        service_api,
        question(user(org.tech), "iam:users:list"),
        question(user(outsider), "iam:users:list"),
        question({"type": "application", "id": str(foreign_app.pk)}, "iam:users:list"),
        question(user(org.tech), "projects:projects:read", project=str(foreign_project.pk)),
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert set(error["details"]) == {
        "questions.1.principal",
        "questions.2.principal",
        "questions.3.project",
    }


def test_the_key_needs_iam_authorize_check(org: Org) -> None:
    # TechAccess and even IAMManager (iam:*) do not include it: it is granted only by name.
    assert "iam:authorize:check" in EXPLICIT_ONLY
    assert "iam:authorize:check" not in expand_pattern("iam:*")
    manager = MembershipFactory(organization=org.organization)
    manager.policy_attachments.create(
        policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager"),
        organization=org.organization,
    )
    for bearer in (org.tech, manager):
        response = ask(API(key_token(bearer, bearer)), question(user(org.tech), "iam:users:list"))
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "permission_denied"
        assert error["details"]["permission"] == "iam:authorize:check"
        assert error["details"]["reason"] == "implicit_deny"
        assert "iam:authorize:check" in error["message"]
    # Owners hold everything; a user holding it by name may ask too.
    assert (
        ask(API(key_token(org.owner, org.owner)), question(user(org.tech), "x:y:z")).status_code
        == 200
    )
    allow(org.readonly, "iam:authorize:check")
    assert (
        ask(
            API(key_token(org.readonly, org.readonly)), question(user(org.tech), "x:y:z")
        ).status_code
        == 200
    )


def test_the_refused_caller_is_audited_with_its_key_as_actor(org: Org) -> None:
    token = key_token(org.tech, org.tech)
    ask(API(token), question(user(org.tech), "iam:users:list"))
    event = AuditEvent.objects.get(action=events.ACCESS_DENIED.name)
    assert event.actor_type == AuditEvent.ActorType.API_KEY
    assert event.actor_label == f"API key {token.split('.')[0]}"
    assert event.target_label == "iam:authorize:check"
    assert event.organization == org.organization


def test_denials_asked_about_are_not_audited(org: Org, service_api: API) -> None:
    answers = decisions(
        service_api,
        question(user(org.billing), "iam:users:list"),
        question(user(org.readonly), "billing:invoices:read"),
    )
    assert not any(a["allowed"] for a in answers)
    assert not AuditEvent.objects.filter(action=events.ACCESS_DENIED.name).exists()


def test_a_revocation_is_seen_on_the_next_call(org: Org, service: Application) -> None:
    api = API(key_token(service, org.owner))
    assert ask(api, question(user(org.tech), "iam:users:list")).status_code == 200
    PolicyAttachment.objects.filter(application=service).delete()
    # Deleting rows directly does not bump the version; the services do. Bump as they do.
    organization_bump_authz_version(organization=org.organization)
    assert ask(api, question(user(org.tech), "iam:users:list")).status_code == 403


def test_asking_again_costs_only_the_key_lookup(
    org: Org, service_api: API, django_assert_num_queries: Any
) -> None:
    """The principals and projects asked about are remembered per authorization version."""
    project = ProjectFactory(organization=org.organization)
    batch = [
        question(user(org.tech), "projects:projects:read", project=str(project.pk)),
        question(user(org.billing), "iam:users:list"),
    ]
    first = decisions(service_api, *batch)
    with django_assert_num_queries(1):  # the key, with its organization and bearer
        assert decisions(service_api, *batch) == first


def test_questions_about_every_project_look_no_project_up(
    org: Org, service_api: API, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A question without a project names none: the projects lookup is not even built."""
    looked_up: list[set[Any]] = []
    real = authz.projects_named
    monkeypatch.setattr(
        authz, "projects_named", lambda o, ids: looked_up.append(set(ids)) or real(o, ids)
    )
    project = ProjectFactory(organization=org.organization)
    decisions(service_api, question(user(org.tech), "iam:users:list"))
    assert looked_up == []
    decisions(
        service_api,
        question(user(org.tech), "iam:users:list"),
        question(user(org.tech), "projects:projects:read", project=str(project.pk)),
    )
    assert looked_up == [{project.pk}]


def test_a_suspension_is_seen_on_the_next_call(org: Org, service_api: API) -> None:
    (before,) = decisions(service_api, question(user(org.tech), "projects:projects:list"))
    assert before["allowed"] is True
    membership_suspend(membership=org.tech, actor=org.owner)
    (after,) = decisions(service_api, question(user(org.tech), "projects:projects:list"))
    assert after["allowed"] is False and after["reason"] == "inactive"


def test_a_new_principal_is_found_without_a_new_version(org: Org, service_api: API) -> None:
    ghost = {"type": "application", "id": "00000000-0000-4000-8000-000000000001"}
    assert ask(service_api, question(ghost, "iam:users:list")).status_code == 404
    ApplicationFactory(organization=org.organization, id=ghost["id"])
    assert ask(service_api, question(ghost, "iam:users:list")).status_code == 200


# ------------------------------------------------------------------------- resources


@pytest.fixture
def instances(org: Org) -> tuple[Resource, Resource]:
    project = ProjectFactory(organization=org.organization, name="a")
    web = ResourceFactory(
        organization=org.organization, project=project, name="web-1", tags={"team": "web"}
    )
    db = ResourceFactory(
        organization=org.organization, project=project, name="db-1", tags={"team": "data"}
    )
    return web, db


def on(resource: Resource) -> dict[str, Any]:
    return {"type": resource.type, "id": str(resource.pk)}


def test_a_rule_on_one_resource_allows_that_resource_only(
    org: Org, service_api: API, instances: tuple[Resource, Resource]
) -> None:
    web, db = instances
    grant = Policy.objects.create(organization=org.organization, name="web-1 only")
    rule = Rule.objects.create(
        policy=grant,
        position=1,
        effect=Rule.Effect.ALLOW,
        actions=["compute:instances:read"],
        scope=Rule.Scope.RESOURCES,
    )
    rule.resources.set([web])
    PolicyAttachment.objects.create(
        policy=grant, organization=org.organization, membership=org.billing
    )
    organization_bump_authz_version(organization=org.organization)
    on_web, on_db, in_project = decisions(
        service_api,
        question(user(org.billing), "compute:instances:read", resource=on(web)),
        question(user(org.billing), "compute:instances:read", resource=on(db)),
        question(user(org.billing), "compute:instances:read", project=str(web.project_id)),
    )
    assert on_web["allowed"] is True and "web-1 only" in on_web["explanation"]
    assert on_db["allowed"] is False
    assert in_project["allowed"] is False  # a project question means every instance there


def test_a_tag_condition_reads_the_resource_and_the_principals_tags(
    org: Org, service_api: API, instances: tuple[Resource, Resource]
) -> None:
    web, db = instances
    allow(
        org.billing,
        "compute:instances:*",
        scope=Rule.Scope.ALL_PROJECTS,
        condition='resource.tags["team"] == principal.tags["team"]',
    )
    Membership.objects.filter(pk=org.billing.pk).update(tags={"team": "web"})
    organization_bump_authz_version(organization=org.organization)
    on_web, on_db, to_come, to_come_elsewhere = decisions(
        service_api,
        question(user(org.billing), "compute:instances:delete", resource=on(web)),
        question(user(org.billing), "compute:instances:delete", resource=on(db)),
        question(
            user(org.billing),
            "compute:instances:create",
            resource={
                "type": "compute:instances",
                "project": str(web.project_id),
                "tags": {"team": "web"},
            },
        ),
        question(
            user(org.billing),
            "compute:instances:create",
            resource={"type": "compute:instances", "project": str(web.project_id)},
        ),
    )
    assert on_web["allowed"] is True and on_db["allowed"] is False
    assert to_come["allowed"] is True and to_come_elsewhere["allowed"] is False


def test_a_retag_is_seen_on_the_next_call(
    org: Org, service_api: API, instances: tuple[Resource, Resource]
) -> None:
    web, _ = instances
    allow(
        org.billing,
        "compute:instances:read",
        scope=Rule.Scope.ALL_PROJECTS,
        condition='resource.tags["team"] == "web"',
    )
    ask_web = question(user(org.billing), "compute:instances:read", resource=on(web))
    assert decisions(service_api, ask_web)[0]["allowed"] is True
    resource_update(resource=web, actor=org.owner.user, tags={"team": "data"})
    assert decisions(service_api, ask_web)[0]["allowed"] is False


@pytest.mark.parametrize(
    "resource, action, message",
    [
        ({"type": "compute:instances"}, "compute:instances:read", "id, or the project"),
        ({"type": "compute:instances", "id": str(uuid.uuid4()), "tags": {}}, None, "id alone"),
        ({"type": "compute:instances", "project": None, "tags": {"bad key": "x"}}, None, "Tag key"),
        ({"type": "storage:buckets", "project": None}, "compute:instances:read", "not an action"),
        ({"type": "no:such"}, None, "resource.type"),
    ],
)
def test_a_malformed_resource_is_422(
    org: Org, service_api: API, resource: dict[str, Any], action: str | None, message: str
) -> None:
    project = ProjectFactory(organization=org.organization)
    if "project" in resource:
        resource["project"] = str(project.pk)
    response = ask(
        service_api,
        question(user(org.tech), action or "compute:instances:read", resource=resource),
    )
    assert response.status_code == 422, response.content
    assert message in json.dumps(response.json()["error"]["details"])


def test_another_organizations_resource_is_404(
    org: Org, service_api: API, instances: tuple[Resource, Resource]
) -> None:
    theirs = ResourceFactory()
    web, _ = instances
    response = ask(
        service_api,
        question(user(org.tech), "compute:instances:read", resource=on(theirs)),
        question(
            user(org.tech), "storage:buckets:read", resource={**on(web), "type": "storage:buckets"}
        ),
        question(
            user(org.tech),
            "compute:instances:create",
            resource={"type": "compute:instances", "project": str(theirs.project_id)},
        ),
    )
    assert response.status_code == 404
    assert set(response.json()["error"]["details"]) == {
        "questions.0.resource",
        "questions.1.resource",
        "questions.2.resource.project",
    }
