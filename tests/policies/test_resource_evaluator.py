"""Resource-level decisions (#14): chosen-resources rules, resource and principal tags in
conditions, and what the evaluator says about them. Pure: no database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence

import pytest

from organizations import tags as stored_tags
from policies.catalogue import ActionScopeError, UnknownActionError
from policies.conditions import facts
from policies.conditions.compiler import ConditionContext, ConditionError, compile_condition
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Principal,
    RequestFacts,
    ResourceFacts,
    ResourceScope,
    RuleError,
    compile_rule,
    decide,
    describe_scope,
)

NOW = dt.datetime(2025, 3, 4, 10, 0, tzinfo=dt.UTC)
OFFICE = RequestFacts(ip="10.1.2.3", user_agent="Mozilla/5.0", time=NOW, mfa=True)
WEB_DEV = Principal(type="user", id="u-1", label="bob@example.com", tags={"team": "web"})
OWNER = Principal(type="user", id="u-0", is_owner=True)
P1, P2 = "project-1", "project-2"
WEB = ResourceFacts("compute:instances", "i-web", P1, {"team": "web", "env": "prod"})
DB = ResourceFacts("compute:instances", "i-db", P1, {"team": "db"})
OTHER = ResourceFacts("compute:instances", "i-other", P2, {"team": "web"})
BUCKET = ResourceFacts("storage:buckets", "b-logs", P1, {"team": "web"})
NEW_WEB = ResourceFacts("compute:instances", None, P1, {"team": "web"})  # not registered yet
SAME_TEAM = 'resource.tags["team"] == principal.tags["team"]'


def rule(
    effect: str,
    actions: Sequence[str],
    scope: str = "all_projects",
    *,
    projects: Sequence[str] = (),
    resources: Sequence[ResourceFacts] = (),
    condition: str = "",
    policy: str = "P",
    strict: bool = True,
) -> CompiledRule:
    return compile_rule(
        policy_id=f"id-{policy}",
        policy_name=policy,
        rule_index=1,
        effect=effect,
        actions=actions,
        scope=scope,
        project_ids=projects,
        resources=[(r.id or "", r.type, r.project_id) for r in resources],
        condition=condition,
        strict=strict,
    )


def on(
    rules: CompiledRuleSet | Sequence[CompiledRule],
    action: str,
    resource: ResourceFacts | None = None,
    project_id: str | None = P1,
    *,
    principal: Principal = WEB_DEV,
):
    return decide(
        principal=principal,
        rules=rules if isinstance(rules, CompiledRuleSet) else CompiledRuleSet(rules),
        action=action,
        project_id=project_id,
        request=OFFICE,
        resource=resource,
    )


# ---------------------------------------------------------------------------- facts


def test_resource_facts_are_frozen_and_hashable() -> None:
    tags = {"team": "web"}
    resource = ResourceFacts("compute:instances", "i-1", P1, tags)
    tags["team"] = "db"  # the caller's dict is copied
    assert resource.tags == {"team": "web"}
    with pytest.raises(TypeError):
        resource.tags["team"] = "db"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        resource.id = "i-2"  # type: ignore[misc]
    assert hash(resource) == hash(ResourceFacts("compute:instances", "i-1", P1, {"team": "web"}))
    assert ResourceFacts("compute:instances", "i-1", P1).tags == {}


def test_resource_facts_of_takes_uuids_and_checks_bounds() -> None:
    rid, pid = uuid.uuid4(), uuid.uuid4()
    resource = ResourceFacts.of(type="dns:zones", id=rid, project_id=pid, tags=None)
    assert (resource.id, resource.project_id) == (str(rid), str(pid))
    assert ResourceFacts.of(type="dns:zones", id=None, project_id=pid).id is None
    with pytest.raises(ValueError):
        ResourceFacts("dns:zones", "", P1)
    with pytest.raises(ValueError):
        ResourceFacts("dns:zones", "z", P1, {f"k{n}": "v" for n in range(facts.MAX_TAGS + 1)})
    with pytest.raises(ValueError):
        ResourceFacts("dns:zones", "z", P1, {"k": "v" * (facts.MAX_TAG_VALUE_LENGTH + 1)})
    with pytest.raises(ValueError):
        ResourceFacts("dns:zones", "z", P1, {"k": 1})  # type: ignore[dict-item]


def test_tag_bounds_are_the_stored_ones() -> None:
    assert facts.MAX_TAGS == stored_tags.TAGS_MAX
    assert facts.MAX_TAG_VALUE_LENGTH == stored_tags.TAG_VALUE_MAX_LENGTH
    assert stored_tags.TAG_KEY.match("k" * facts.MAX_TAG_KEY_LENGTH)
    assert not stored_tags.TAG_KEY.match("k" * (facts.MAX_TAG_KEY_LENGTH + 1))


def test_principal_tags_default_to_an_empty_frozen_mapping() -> None:
    assert Principal(type="user", id="u").tags == {}
    principal = Principal(type="application", id="a", tags={"team": "web"})
    with pytest.raises(TypeError):
        principal.tags["team"] = "db"  # type: ignore[index]
    assert hash(principal) == hash(Principal(type="application", id="a", tags={"team": "web"}))


# ------------------------------------------------------------------------ compiling


def test_a_resources_rule_needs_a_resource() -> None:
    with pytest.raises(RuleError, match="at least one resource"):
        rule("allow", ["compute:instances:read"], "resources")
    with pytest.raises(RuleError, match="not a resource type"):
        compile_rule(
            policy_id="p",
            policy_name="P",
            rule_index=1,
            effect="allow",
            actions=["compute:instances:read"],
            scope="resources",
            resources=[("x", "compute:volumes", P1)],
        )


@pytest.mark.parametrize("action", ["compute:instances:list", "compute:instances:create"])
def test_list_and_create_are_decided_on_a_project_never_on_a_resource(action: str) -> None:
    with pytest.raises(ActionScopeError, match="decided on a project"):
        rule("allow", [action], "resources", resources=[WEB])


def test_a_resources_rule_acts_on_the_types_of_its_resources() -> None:
    with pytest.raises(ActionScopeError, match="no chosen resource"):
        rule("allow", ["storage:buckets:read"], "resources", resources=[WEB])
    with pytest.raises(ActionScopeError):
        rule("allow", ["iam:users:read"], "resources", resources=[WEB])
    with pytest.raises(UnknownActionError):
        rule("allow", ["compute:instances:reed"], "resources", resources=[WEB])
    mixed = rule(
        "allow",
        ["compute:instances:read", "storage:buckets:delete"],
        "resources",
        resources=[WEB, BUCKET],
    )
    assert mixed.actions == {"compute:instances:read", "storage:buckets:delete"}


def test_a_wildcard_on_resources_keeps_their_per_resource_actions() -> None:
    compiled = rule("allow", ["*"], "resources", resources=[WEB])
    assert compiled.actions == {
        "compute:instances:read",
        "compute:instances:update",
        "compute:instances:delete",
    }
    assert isinstance(compiled.scope, ResourceScope)
    assert compiled.scope.by_id == {"i-web": ("compute:instances", P1)}
    with pytest.raises(ActionScopeError):
        rule("allow", ["dns:*"], "resources", resources=[WEB])


def test_stored_resources_rules_degrade_towards_denial() -> None:
    lenient = rule(
        "allow",
        ["compute:instances:list", "compute:instances:read", "dns:zones:read"],
        "resources",
        resources=[WEB],
        strict=False,
    )
    assert lenient.actions == {"compute:instances:read"}
    emptied = rule("deny", ["compute:instances:read"], "resources", strict=False)
    assert emptied.actions == frozenset()
    assert not on([emptied], "compute:instances:read", project_id=None).matched_rules


# ------------------------------------------------------------- deciding on a resource


def test_with_a_resource_its_project_is_the_question_s() -> None:
    decision = on([rule("allow", ["compute:instances:read"], "projects", projects=[P1])],
                  "compute:instances:read", WEB, project_id=P2)  # fmt: skip
    assert decision.allowed
    assert decision.project_id == P1


def test_with_a_resource_organization_rules_never_match() -> None:
    organization = rule("allow", ["iam:users:read"], "organization")
    assert not organization.scope_matches("project", None, WEB, "compute:instances:read")
    assert not organization.scope_matches("organization", None, WEB, "iam:users:read")


def test_with_a_resource_all_projects_and_chosen_projects_rules_match() -> None:
    everywhere = rule("allow", ["compute:instances:read"])
    assert on([everywhere], "compute:instances:read", WEB).allowed
    chosen = rule("allow", ["compute:instances:read"], "projects", projects=[P1])
    assert on([chosen], "compute:instances:read", WEB).allowed
    assert not on([chosen], "compute:instances:read", OTHER).allowed


def test_a_resources_rule_matches_the_resources_it_names_only() -> None:
    rules = [rule("allow", ["compute:instances:read"], "resources", resources=[WEB])]
    allowed = on(rules, "compute:instances:read", WEB)
    assert allowed.allowed
    assert allowed.explanation == "allowed by rule 1 of policy P, which names this resource (i-web)"
    assert not on(rules, "compute:instances:read", DB).allowed
    assert not on(rules, "compute:instances:read", NEW_WEB).allowed  # not registered yet
    assert not on(rules, "compute:instances:update", WEB).allowed  # not among its actions


def test_a_resources_rule_matches_for_actions_of_the_named_resource_s_type() -> None:
    rules = [
        rule(
            "allow",
            ["compute:instances:read", "storage:buckets:read"],
            "resources",
            resources=[WEB, BUCKET],
        )
    ]
    assert on(rules, "storage:buckets:read", BUCKET).allowed
    # An instance claiming the bucket's id is not the bucket the rule names.
    impostor = ResourceFacts("compute:instances", BUCKET.id, P1)
    assert not on(rules, "compute:instances:read", impostor).allowed


def test_a_resources_allow_never_grants_on_a_project() -> None:
    rules = [rule("allow", ["compute:instances:read"], "resources", resources=[WEB])]
    assert not on(rules, "compute:instances:read").allowed
    assert not on(rules, "compute:instances:read", project_id=None).allowed
    assert on(rules, "compute:instances:read").explanation == (
        "denied: no policy grants compute:instances:read in this project"
    )


def test_a_resources_deny_takes_the_project_that_holds_one_of_its_resources() -> None:
    rules = [
        rule("allow", ["compute:*", "storage:*"]),
        rule("deny", ["compute:instances:delete"], "resources", resources=[DB], policy="Lock"),
    ]
    held = on(rules, "compute:instances:delete", project_id=P1)
    assert not held.allowed
    assert held.explanation == (
        "denied by rule 1 of policy Lock, which denies it on instance i-db in this project"
    )
    assert on(rules, "compute:instances:delete", project_id=P2).allowed
    every = on(rules, "compute:instances:delete", project_id=None)
    assert not every.allowed
    assert every.explanation == "denied by rule 1 of policy Lock, which denies it on instance i-db"
    # Other resources of the project, and other actions, are not concerned.
    assert on(rules, "compute:instances:delete", WEB).allowed
    assert not on(rules, "compute:instances:delete", DB).allowed
    assert on(rules, "compute:instances:read", project_id=P1).allowed


def test_a_resources_deny_on_a_project_counts_resources_of_the_action_s_type() -> None:
    bucket_elsewhere = ResourceFacts("storage:buckets", "b-2", P2)
    rules = [
        rule("allow", ["storage:*"]),
        rule(
            "deny",
            ["compute:instances:delete", "storage:buckets:delete"],
            "resources",
            resources=[WEB, bucket_elsewhere],
        ),
    ]
    assert on(rules, "storage:buckets:delete", project_id=P1).allowed  # only an instance in P1
    assert not on(rules, "storage:buckets:delete", project_id=P2).allowed


@pytest.mark.parametrize("principal", [WEB_DEV, OWNER])
def test_an_action_of_another_type_asked_on_a_resource_is_denied(principal: Principal) -> None:
    decision = on([rule("allow", ["*"])], "storage:buckets:read", WEB, principal=principal)
    assert (decision.allowed, decision.reason) == (False, "implicit_deny")
    assert decision.explanation == (
        "denied: storage:buckets:read is not an action on a compute:instances resource"
    )
    organization_level = on([rule("allow", ["*"], "organization")], "iam:users:list", WEB)
    assert not organization_level.allowed
    unknown = ResourceFacts("compute:volumes", "v-1", P1)
    assert not on([rule("allow", ["*"])], "compute:instances:read", unknown).allowed


def test_list_and_create_asked_on_a_resource_are_decided_on_its_project() -> None:
    rules = [
        rule("allow", ["compute:instances:create"], condition='resource.tags["team"] == "web"')
    ]
    assert on(rules, "compute:instances:create", NEW_WEB).allowed
    assert not on(rules, "compute:instances:create", DB).allowed


# --------------------------------------------------------------------- conditions


def test_conditions_read_the_resource_and_the_principal() -> None:
    checks = {
        'resource.type == "compute:instances"': True,
        'resource.id == "i-web"': True,
        f'resource.project == "{P1}"': True,
        'resource.tags["env"] == "prod"': True,
        '"env" in resource.tags && !("owner" in resource.tags)': True,
        SAME_TEAM: True,
        'principal.tags["team"] == "db"': False,
        'resource.tags.team == "web"': True,
    }
    for source, expected in checks.items():
        decision = on([rule("allow", ["compute:instances:read"], condition=source)],
                      "compute:instances:read", WEB)  # fmt: skip
        assert decision.allowed is expected, source


def test_a_tag_condition_tells_resources_apart() -> None:
    rules = CompiledRuleSet([rule("allow", ["compute:instances:*"], condition=SAME_TEAM)])
    for _ in range(2):  # and nothing memoised makes one answer for the other
        assert on(rules, "compute:instances:read", WEB).allowed
        assert not on(rules, "compute:instances:read", DB).allowed


def test_reading_the_resource_without_one_fails_closed() -> None:
    allow = rule("allow", ["compute:instances:read"], condition=SAME_TEAM)
    denied = on([allow], "compute:instances:read")
    assert not denied.allowed
    assert denied.condition_errors[0][1] == (
        "resource.tags cannot be read: the question is about no resource"
    )
    deny = rule("deny", ["compute:instances:read"], condition='resource.tags["env"] == "prod"')
    both = on([rule("allow", ["compute:*"]), deny], "compute:instances:read")
    assert (both.allowed, both.reason) == (False, "explicit_deny")
    assert "could not be evaluated" in both.explanation
    # On a resource, the same deny reads its tags.
    dev = ResourceFacts("compute:instances", "i-dev", P1, {"env": "dev"})
    assert on([rule("allow", ["compute:*"]), deny], "compute:instances:read", dev).allowed
    assert not on([rule("allow", ["compute:*"]), deny], "compute:instances:read", DB).allowed


def test_a_missing_tag_fails_closed() -> None:
    untagged = ResourceFacts("compute:instances", "i-bare", P1)
    allow = rule("allow", ["compute:instances:read"], condition=SAME_TEAM)
    deny = rule("deny", ["compute:instances:read"], condition='resource.tags["env"] != "prod"')
    assert not on([allow], "compute:instances:read", untagged).allowed
    assert not on([rule("allow", ["compute:*"]), deny], "compute:instances:read", untagged).allowed
    untagged_principal = Principal(type="user", id="u-2")
    assert not on([allow], "compute:instances:read", WEB, principal=untagged_principal).allowed


def test_the_fast_path_reads_tags() -> None:
    for source in (
        SAME_TEAM,
        'resource.tags["team"] == "web"',
        '"team" in resource.tags',
        'principal.tags["team"] != "db" && request.mfa',
    ):
        condition = compile_condition(source)
        assert condition.fast is not None, source
        for resource in (WEB, DB, ResourceFacts("compute:instances", "x", P1)):
            context = ConditionContext(
                ip="10.1.2.3",
                user_agent="",
                time=NOW,
                mfa=True,
                principal_type="user",
                principal_id="u",
                principal_tags=WEB_DEV.tags,
                resource=resource,
            )
            context.expect(condition.fields, frozenset())
            try:
                library: bool | None = condition.evaluate(context)
            except Exception:
                library = None
            try:
                fast: bool | None = condition.fast(context.values)
            except Exception:
                fast = None
            assert fast == library, (source, resource)


def test_resource_facts_are_read_only_when_a_condition_reads_them() -> None:
    context = ConditionContext(
        ip="10.1.2.3",
        user_agent="",
        time=NOW,
        mfa=True,
        principal_type="user",
        principal_id="u",
        principal_tags=WEB_DEV.tags,
        resource=WEB,
    )
    assert "resource.tags" not in context.values
    assert "principal.tags" not in context.values
    context.expect(frozenset({"resource.tags"}), frozenset())
    assert context.values["resource.tags"] == WEB.tags
    assert "principal.tags" not in context.values


def test_compiling_checks_resource_and_tag_reads() -> None:
    assert compile_condition(SAME_TEAM).fields == {"resource.tags", "principal.tags"}
    with pytest.raises(ConditionError, match="only be used through its fields"):
        compile_condition("resource == null")
    with pytest.raises(ConditionError, match=r'Unknown field "resource\.name"'):
        compile_condition('resource.name == "x"')
    with pytest.raises(ConditionError, match="tag keys are written as text"):
        compile_condition('resource.tags[principal.id] == "x"')
    compile_condition('resource.id == null || resource.id.startsWith("i-")')


# ------------------------------------------------------------------- explanations


def test_an_allow_through_tags_names_the_values_that_matched() -> None:
    rules = [rule("allow", ["compute:instances:*"], condition=SAME_TEAM, policy="Teams")]
    assert on(rules, "compute:instances:read", WEB).explanation == (
        'allowed by rule 1 of policy Teams, as resource.tags["team"] is "web", '
        'principal.tags["team"] is "web"'
    )


def test_a_denial_through_tags_names_the_values_that_did_not_match() -> None:
    rules = [rule("allow", ["compute:instances:*"], condition=SAME_TEAM, policy="Teams")]
    decision = on(rules, "compute:instances:read", DB)
    assert decision.explanation == (
        "denied: no policy grants compute:instances:read on this resource; rule 1 of policy "
        'Teams grants it only when its condition holds: resource.tags["team"] is "db", '
        'principal.tags["team"] is "web"'
    )
    (report,) = decision.condition_reports
    assert [part.kind for part in report.parts] == ["tag"]
    assert "resource.tags" in report.parts[0].advice


def test_a_deny_through_tags_names_the_tag() -> None:
    rules = [
        rule("allow", ["compute:*"]),
        rule("deny", ["compute:instances:delete"], condition='resource.tags["env"] == "prod"',
             policy="Prod"),
    ]  # fmt: skip
    assert on(rules, "compute:instances:delete", WEB).explanation == (
        'denied by rule 1 of policy Prod, as resource.tags["env"] is "prod"'
    )


def test_describe_scope_names_chosen_resources() -> None:
    scope = ResourceScope.of(
        [("i-web", "compute:instances", P1), ("z-1", "dns:zones", P2), ("b", "storage:buckets", P1)]
    )
    assert describe_scope(scope, resource_names={"i-web": "web-1"}) == (
        "DNS zone z-1, bucket b, instance web-1"
    )
    assert describe_scope(scope, project_id=P2) == "DNS zone z-1"


# ----------------------------------------------------------------- indexing, memo


def test_resources_rules_are_candidates_only_for_the_resources_they_name() -> None:
    named = rule("allow", ["compute:instances:read"], "resources", resources=[WEB])
    everywhere = rule("allow", ["compute:instances:read"], policy="All")
    rules = CompiledRuleSet([named, everywhere])
    assert rules.candidates("compute:instances:read", P1, WEB) == (named, everywhere)
    assert rules.candidates("compute:instances:read", P1, DB) == (everywhere,)
    assert rules.candidates("compute:instances:read", P1) == (everywhere,)
    assert rules.candidates("storage:buckets:read", P1, WEB) == ()


def test_a_memoised_decision_on_one_resource_is_never_served_for_another() -> None:
    rules = CompiledRuleSet(
        [rule("allow", ["compute:instances:read"], "resources", resources=[WEB])]
    )
    for first, second in ((WEB, DB), (DB, WEB)):
        rules._decisions.clear()
        assert on(rules, "compute:instances:read", first).allowed is (first is WEB)
        assert on(rules, "compute:instances:read", second).allowed is (second is WEB)
    assert not on(rules, "compute:instances:read").allowed
    # Resources no rule names share one plan and one decision per project.
    assert on(rules, "compute:instances:read", DB) is on(
        rules, "compute:instances:read", ResourceFacts("compute:instances", "i-3", P1)
    )
