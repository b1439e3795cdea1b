"""Policies, rules, attachments and guardrails through the API: the console's services
behind typed operations, with `ETag`/`If-Match`, the delegation ceiling and the audit trail
naming the key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from organizations.models import APIKey, Organization
from policies.authz import decide_for
from policies.evaluator import RequestFacts
from policies.models import Policy, PolicyAttachment, Rule
from tests.api.conftest import API, allow, key_token
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db


class Client(API):
    """`API` with the other methods the policy operations use."""

    def send(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        return self.client.generic(
            method,
            f"/api/v1{path}",
            json.dumps(body) if body is not None else "",
            content_type="application/json",
            headers={**self.headers(None), **headers},
        )


def client_for(org: Org, who: str) -> Client:
    """A key of the persona `who`; the outsider's key is of their own organization."""
    if who == "outsider":
        membership = org.outsider.memberships.get()
        return Client(key_token(membership, membership))
    membership = getattr(org, who)
    return Client(key_token(membership, membership))


@pytest.fixture
def owner(org: Org) -> Client:
    return client_for(org, "owner")


@pytest.fixture
def policy(org: Org) -> Policy:
    policy = PolicyFactory(organization=org.organization, name="Devs", description="d")
    RuleFactory(policy=policy, position=1, actions=["projects:projects:list"])
    return policy


def version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def last_event(action: events.EventType) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action.name).latest("id")
    assert event.actor_type == AuditEvent.ActorType.API_KEY
    return event


def rule_body(**more: Any) -> dict[str, Any]:
    return {"effect": "allow", "actions": ["iam:users:list"], "scope": "organization", **more}


# ---------------------------------------------------------------------- policies


def test_list_pages_custom_and_managed_policies_by_cursor(org: Org, owner: Client) -> None:
    for n in range(3):
        PolicyFactory(organization=org.organization, name=f"p{n}")
    Policy.objects.create(organization=org.organization, kind=Policy.Kind.GUARDRAIL, name="G")
    PolicyFactory(name="elsewhere")  # another organization's
    seen: list[str] = []
    cursor = ""
    while True:
        response = owner.get(f"/policies?limit=2{'&cursor=' + cursor if cursor else ''}")
        assert response.status_code == 200
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        if not body["next"]:
            break
        cursor = body["next"]
    expected = Policy.objects.filter(kind=Policy.Kind.MANAGED).count() + 3
    assert len(seen) == len(set(seen)) == expected
    names = set(Policy.objects.filter(pk__in=seen).values_list("name", flat=True))
    assert {"p0", "p1", "p2", "ReadOnlyAccess"} <= names and not {"G", "elsewhere"} & names
    assert owner.get("/policies?cursor=junk").json()["error"]["code"] == "invalid_cursor"
    assert owner.get("/policies?limit=101").status_code == 422


def test_create_returns_the_policy_with_its_etag_and_audits_the_key(
    org: Org, owner: Client
) -> None:
    response = owner.post("/policies", {"name": "Ops", "description": "x", "labels": ["a"]})
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["kind"], body["labels"], body["rules"]) == (
        "Ops",
        "custom",
        ["a"],
        [],
    )
    assert response["ETag"] == body["etag"]
    event = last_event(events.POLICY_CREATED)
    assert event.target_id == body["id"]
    duplicate = owner.post("/policies", {"name": "ops"})
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == "invalid"


def test_read_shows_rules_and_attachments(org: Org, owner: Client, policy: Policy) -> None:
    group = GroupFactory(organization=org.organization, name="Finance")
    PolicyAttachment.objects.create(policy=policy, organization=org.organization, group=group)
    PolicyAttachment.objects.create(
        policy=policy, organization=org.organization, membership=org.tech
    )
    body = owner.get(f"/policies/{policy.pk}").json()
    assert [rule["actions"] for rule in body["rules"]] == [["projects:projects:list"]]
    assert {(a["type"], a["id"]) for a in body["attachments"]} == {
        ("group", str(group.pk)),
        ("user", str(org.tech.user_id)),
    }


def test_update_with_if_match_and_stale_tag_conflicts(
    org: Org, owner: Client, policy: Policy
) -> None:
    etag = owner.get(f"/policies/{policy.pk}")["ETag"]
    before = version(org)
    body = {"name": "Developers", "description": "new", "labels": []}
    response = owner.send("PUT", f"/policies/{policy.pk}", body, **{"If-Match": etag})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Developers" and response["ETag"] != etag
    assert version(org) == before + 1
    assert last_event(events.POLICY_UPDATED).data["after"]["name"] == "Developers"
    stale = owner.send("PUT", f"/policies/{policy.pk}", {"name": "Other"}, **{"If-Match": etag})
    assert stale.status_code == 409
    assert stale.json()["error"]["details"]["etag"] == response["ETag"]
    assert Policy.objects.get(pk=policy.pk).name == "Developers"


def test_managed_policies_are_read_only(owner: Client) -> None:
    managed = Policy.objects.get(kind=Policy.Kind.MANAGED, name="ReadOnlyAccess")
    response = owner.send("PUT", f"/policies/{managed.pk}", {"name": "Mine"})
    assert response.status_code == 400
    assert owner.send("DELETE", f"/policies/{managed.pk}").status_code == 400


def test_duplicate_copies_rules(org: Org, owner: Client, policy: Policy) -> None:
    response = owner.post(f"/policies/{policy.pk}/duplicate", None)
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Copy of Devs" and len(body["rules"]) == 1
    assert body["attachments"] == []
    assert last_event(events.POLICY_DUPLICATED).target_id == body["id"]


def test_delete_with_if_match(org: Org, owner: Client, policy: Policy) -> None:
    PolicyAttachment.objects.create(
        policy=policy, organization=org.organization, membership=org.tech
    )
    etag = owner.get(f"/policies/{policy.pk}")["ETag"]
    RuleFactory(policy=policy, position=2)  # someone else's change since the read
    assert owner.send("DELETE", f"/policies/{policy.pk}", **{"If-Match": etag}).status_code == 409
    before = version(org)
    etag = owner.get(f"/policies/{policy.pk}")["ETag"]
    response = owner.send("DELETE", f"/policies/{policy.pk}", **{"If-Match": etag})
    assert response.status_code == 204
    assert not Policy.objects.filter(pk=policy.pk).exists()
    assert version(org) == before + 1
    assert last_event(events.POLICY_DELETED).data["before"]["name"] == "Devs"


# -------------------------------------------------------------------------- rules


def test_rule_add_update_move_remove(org: Org, owner: Client, policy: Policy) -> None:
    project = ProjectFactory(organization=org.organization)
    base = f"/policies/{policy.pk}/rules"
    before = version(org)
    added = owner.post(
        base,
        rule_body(actions=["compute:instances:list"], scope="projects", projects=[str(project.pk)]),
    )
    assert added.status_code == 201, added.content
    rules = added.json()["rules"]
    assert [r["position"] for r in rules] == [1, 2]
    assert rules[1]["projects"] == [str(project.pk)]
    assert last_event(events.POLICY_RULE_ADDED) and version(org) == before + 1
    new_id = rules[1]["id"]

    updated = owner.send("PUT", f"{base}/{new_id}", rule_body(effect="deny"))
    assert updated.status_code == 200
    assert updated.json()["rules"][1]["effect"] == "deny"
    assert last_event(events.POLICY_RULE_UPDATED) and version(org) == before + 2

    moved = owner.post(f"{base}/{new_id}/move", {"direction": "up"})
    assert moved.status_code == 200
    assert moved.json()["rules"][0]["id"] == new_id
    assert last_event(events.POLICY_RULES_REORDERED) and version(org) == before + 3

    removed = owner.send("DELETE", f"{base}/{new_id}", **{"If-Match": moved["ETag"]})
    assert removed.status_code == 200
    assert [r["position"] for r in removed.json()["rules"]] == [1]
    assert last_event(events.POLICY_RULE_REMOVED) and version(org) == before + 4


def test_rule_refusals(org: Org, owner: Client, policy: Policy) -> None:
    base = f"/policies/{policy.pk}/rules"
    invalid = owner.post(base, rule_body(actions=["no:such:thing"]))
    assert invalid.status_code == 400 and "actions" in invalid.json()["error"]["details"]
    bad_cel = owner.post(base, rule_body(condition="request.ip ==="))
    assert bad_cel.status_code == 400 and "condition" in bad_cel.json()["error"]["details"]
    elsewhere = ProjectFactory()
    foreign = owner.post(
        base,
        rule_body(
            actions=["compute:instances:list"], scope="projects", projects=[str(elsewhere.pk)]
        ),
    )
    assert foreign.status_code == 404
    assert owner.post(base, {**rule_body(), "colour": "red"}).status_code == 422
    assert policy.rules.count() == 1


def test_delegation_refusal_is_403_and_audited(org: Org, policy: Policy) -> None:
    manager = MembershipFactory(organization=org.organization)
    allow(manager, "iam:policies:update", "iam:policies:read", scope=Rule.Scope.ORGANIZATION)
    PolicyAttachment.objects.create(
        policy=policy, organization=org.organization, membership=org.tech
    )
    api = Client(key_token(manager, manager))
    response = api.post(
        f"/policies/{policy.pk}/rules", rule_body(actions=["billing:invoices:read"])
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "delegation_refused"
    assert error["details"]["exceeding"] == [
        {"action": "billing:invoices:read", "where": "organization"}
    ]
    assert policy.rules.count() == 1
    assert last_event(events.DELEGATION_REFUSED)


def test_application_key_is_judged_by_the_applications_own_rights(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    allow(application, "iam:policies:attach", "iam:users:list", scope=Rule.Scope.ORGANIZATION)
    api = Client(key_token(application, org.owner))
    within = PolicyFactory(organization=org.organization)
    RuleFactory(policy=within, position=1, actions=["iam:users:list"])
    beyond = PolicyFactory(organization=org.organization)
    RuleFactory(policy=beyond, position=1, actions=["billing:invoices:read"])
    target = {"type": "user", "id": str(org.readonly.user_id)}
    assert api.post(f"/policies/{within.pk}/attachments", target).status_code == 201
    event = last_event(events.POLICY_ATTACHED)
    assert event.actor_id == str(api_key_id(api))
    refused = api.post(f"/policies/{beyond.pk}/attachments", target)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "delegation_refused"


def api_key_id(api: Client) -> Any:
    return APIKey.objects.get(access_key=api.token.split(".")[0]).pk


# -------------------------------------------------------------------- attachments


@pytest.mark.parametrize("kind", ["user", "group", "application"])
def test_attach_and_detach(org: Org, owner: Client, policy: Policy, kind: str) -> None:
    principal_id = {
        "user": lambda: org.tech.user_id,
        "group": lambda: GroupFactory(organization=org.organization).pk,
        "application": lambda: ApplicationFactory(organization=org.organization).pk,
    }[kind]()
    path = f"/policies/{policy.pk}/attachments"
    before = version(org)
    response = owner.post(path, {"type": kind, "id": str(principal_id)})
    assert response.status_code == 201, response.content
    assert {"type": kind, "id": str(principal_id)}.items() <= response.json()["attachments"][
        0
    ].items()
    event = last_event(events.POLICY_ATTACHED)
    assert event.data["principal"] == {"type": kind, "id": str(principal_id)}
    assert version(org) == before + 1
    assert owner.post(path, {"type": kind, "id": str(principal_id)}).status_code == 200
    detached = owner.send("DELETE", f"{path}/{kind}/{principal_id}")
    assert detached.status_code == 200 and detached.json()["attachments"] == []
    assert last_event(events.POLICY_DETACHED) and version(org) == before + 2


def test_guardrails_cannot_be_attached(org: Org, owner: Client) -> None:
    owner.post("/guardrails/rules", rule_body(effect="deny", actions=["billing:*"]))
    guardrail = Policy.objects.get(kind=Policy.Kind.GUARDRAIL)
    response = owner.post(
        f"/policies/{guardrail.pk}/attachments", {"type": "user", "id": str(org.tech.user_id)}
    )
    assert response.status_code == 400


# --------------------------------------------------------------------- guardrails


def test_guardrails_read_and_add_rule(org: Org, owner: Client) -> None:
    assert owner.get("/guardrails").json() == {"id": None, "rules": []}
    before = version(org)
    response = owner.post("/guardrails/rules", rule_body(effect="deny", actions=["billing:*"]))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["rules"][0]["actions"] == ["billing:*"] and body["id"]
    assert last_event(events.GUARDRAIL_UPDATED) and version(org) == before + 1
    assert owner.get("/guardrails").json() == body


def test_guardrails_only_by_name(org: Org) -> None:
    """A holder of every IAM policy permission by wildcard is still refused the guardrails;
    a holder of iam:guardrails:update by name may add to them."""
    wildcard = MembershipFactory(organization=org.organization)
    allow(wildcard, "iam:*", scope=Rule.Scope.ORGANIZATION)
    response = client_for_member(wildcard).post("/guardrails/rules", rule_body(effect="deny"))
    assert response.status_code == 403
    assert response.json()["error"]["details"]["permission"] == "iam:guardrails:update"
    named = MembershipFactory(organization=org.organization)
    allow(named, "iam:guardrails:update", "iam:users:list", scope=Rule.Scope.ORGANIZATION)
    assert (
        client_for_member(named).post("/guardrails/rules", rule_body(effect="deny")).status_code
        == 201
    )


def client_for_member(membership: Any) -> Client:
    return Client(key_token(membership, membership))


# -------------------------------------------------------------------- role matrix


@dataclass(frozen=True)
class Operation:
    method: str
    path: Callable[[Policy, Org], str]
    action: str
    body: Callable[[Org], Any] = lambda org: None


OPERATIONS = {
    "list": Operation("GET", lambda p, o: "/policies", "iam:policies:list"),
    "create": Operation(
        "POST", lambda p, o: "/policies", "iam:policies:create", lambda o: {"name": "N"}
    ),
    "read": Operation("GET", lambda p, o: f"/policies/{p.pk}", "iam:policies:read"),
    "update": Operation(
        "PUT", lambda p, o: f"/policies/{p.pk}", "iam:policies:update", lambda o: {"name": "M"}
    ),
    "duplicate": Operation(
        "POST", lambda p, o: f"/policies/{p.pk}/duplicate", "iam:policies:create"
    ),
    "delete": Operation("DELETE", lambda p, o: f"/policies/{p.pk}", "iam:policies:delete"),
    "rule_add": Operation(
        "POST", lambda p, o: f"/policies/{p.pk}/rules", "iam:policies:update", lambda o: rule_body()
    ),
    "rule_update": Operation(
        "PUT",
        lambda p, o: f"/policies/{p.pk}/rules/{p.rules.get().pk}",
        "iam:policies:update",
        lambda o: rule_body(),
    ),
    "rule_move": Operation(
        "POST",
        lambda p, o: f"/policies/{p.pk}/rules/{p.rules.get().pk}/move",
        "iam:policies:update",
        lambda o: {"direction": "up"},
    ),
    "rule_remove": Operation(
        "DELETE", lambda p, o: f"/policies/{p.pk}/rules/{p.rules.get().pk}", "iam:policies:update"
    ),
    "attach": Operation(
        "POST",
        lambda p, o: f"/policies/{p.pk}/attachments",
        "iam:policies:attach",
        lambda o: {"type": "user", "id": str(o.readonly.user_id)},
    ),
    "detach": Operation(
        "DELETE",
        lambda p, o: f"/policies/{p.pk}/attachments/user/{o.readonly.user_id}",
        "iam:policies:attach",
    ),
    "guardrails_read": Operation("GET", lambda p, o: "/guardrails", "iam:policies:read"),
    "guardrails_rule_add": Operation(
        "POST",
        lambda p, o: "/guardrails/rules",
        "iam:guardrails:update",
        lambda o: rule_body(effect="deny", actions=["billing:*"]),
    ),
}


def allowed(org: Org, who: str, action: str) -> bool:
    facts = RequestFacts(ip="127.0.0.1", user_agent="", time=timezone.now(), mfa=False)
    return decide_for(getattr(org, who), action, None, facts).allowed


@pytest.mark.parametrize("who", ["owner", "tech", "billing", "readonly"])
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_role_matrix(org: Org, policy: Policy, who: str, name: str) -> None:
    operation = OPERATIONS[name]
    expected = allowed(org, who, operation.action)
    response = client_for(org, who).send(
        operation.method, operation.path(policy, org), operation.body(org)
    )
    if expected:
        assert 200 <= response.status_code < 300, response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == operation.action


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in OPERATIONS
        if name not in ("list", "create", "guardrails_read", "guardrails_rule_add")
    ],
)
def test_outsider_gets_404_for_this_organizations_policies(
    org: Org, policy: Policy, name: str
) -> None:
    operation = OPERATIONS[name]
    response = client_for(org, "outsider").send(
        operation.method, operation.path(policy, org), operation.body(org)
    )
    assert response.status_code == 404
    assert Policy.objects.filter(pk=policy.pk, name="Devs").exists()
