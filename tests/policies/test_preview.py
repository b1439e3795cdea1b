"""Change previews (policies.preview): who gains or loses what if a rule or attachment
change is saved; nothing saved until confirmed, and the confirmed change's audit event
carries the diff."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from organizations.models import Application, Group, Membership, Organization, Project
from policies import authz, preview
from policies.evaluator import CompiledRule, decide
from policies.models import Policy, PolicyAttachment, Rule
from policies.selectors.rules import compile_policy_rules, compile_rules_for, compile_stored_rule
from policies.selectors.who_can import _no_facts, who_can
from policies.services import attachments as attachment_services
from policies.services import guardrails as guardrail_services
from policies.services import rules as rule_services
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    OrganizationFactory,
    PolicyFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
READ = "billing:invoices:read"
UPDATE = "iam:policies:update"  # held by no persona but the owner


def _rule(**values: str) -> dict[str, str]:
    return {"effect": "allow", "actions": READ, "scope": "organization", **values}


@pytest.fixture
def finance(org: Org) -> tuple[Policy, Group]:
    """A custom policy attached to group Finance (tech is a member) and to readonly."""
    policy = PolicyFactory(organization=org.organization, name="Finance-policy")
    group = GroupFactory(organization=org.organization, name="Finance")
    group.members.add(org.tech)
    for principal in (group, org.readonly):
        attachment_services.policy_attach(policy=policy, principal=principal, actor=org.owner.user)
    return policy, group


def _state(org: Org) -> tuple[int, int, int, int]:
    version = Organization.objects.get(pk=org.organization.pk).authz_version
    return (
        version,
        AuditEvent.objects.count(),
        Rule.objects.count(),
        PolicyAttachment.objects.count(),
    )


def _digest(response: HttpResponse) -> str:
    found = re.search(r'name="preview_digest" value="([0-9a-f]+)"', response.content.decode())
    assert found, response.content.decode()
    return found[1]


def _url(name: str, *args: object) -> str:
    return reverse(f"policies:{name}", args=args)


# ------------------------------------------------------------------------ rule changes


def test_previewing_a_rule_names_who_gains_it_and_saves_nothing(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    client = org.client_for("owner")
    before = _state(org)

    response = client.post(
        _url("rule_add", org.organization.pk, policy.pk),
        {**_rule(), "preview": "1"},
        headers=HTMX,
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="rules"' in body and "Preview: add a rule" in body
    assert "+2 principals gain" in body and READ in body
    assert org.tech.user.email in body and "through group Finance" in body
    assert org.readonly.user.email in body and "directly" in body
    # billing already holds it (BillingAccess); the owner always does.
    assert org.billing.user.email not in body and org.owner.user.email not in body
    assert "No change for the 2 principals allowed it already" in body
    assert "Confirm and save" in body and 'name="preview_digest"' in body
    assert 'name="preview" value="1"' not in body.split("<form", 1)[1]
    assert _state(org) == before


def test_confirming_saves_the_rule_and_its_event_carries_the_diff(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    client = org.client_for("owner")
    url = _url("rule_add", org.organization.pk, policy.pk)
    shown = client.post(url, {**_rule(), "preview": "1"}, headers=HTMX)
    digest = _digest(shown)

    response = client.post(url, {**_rule(), "preview_digest": digest})

    assert response.status_code == 302
    assert policy.rules.count() == 1
    event = AuditEvent.objects.filter(action="iam.policy.rule_added").latest("occurred_at")
    diff = event.data["preview"][READ]
    assert diff["gain"] == sorted([org.tech.user.email, org.readonly.user.email])
    assert diff["counts"] == {"gain": 2}


def test_a_confirmation_of_a_diff_that_moved_is_shown_again_not_saved(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    client = org.client_for("owner")
    url = _url("rule_add", org.organization.pk, policy.pk)
    before = _state(org)

    response = client.post(url, {**_rule(), "preview_digest": "0" * 32}, headers=HTMX)

    body = response.content.decode()
    assert "Access changed since your preview" in body and "Confirm and save" in body
    assert _state(org) == before


def test_saving_without_preview_still_works(org: Org, finance: tuple[Policy, Group]) -> None:
    policy, _ = finance
    response = org.client_for("owner").post(
        _url("rule_add", org.organization.pk, policy.pk), _rule()
    )
    assert response.status_code == 302 and policy.rules.count() == 1
    event = AuditEvent.objects.filter(action="iam.policy.rule_added").latest("occurred_at")
    assert "preview" not in event.data


def test_editing_an_allow_into_a_deny_names_who_loses_it(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    rule = rule_services.rule_add(
        policy=policy, effect="allow", actions=[READ], scope="organization", actor=org.owner.user
    )
    client = org.client_for("owner")
    url = _url("rule_update", org.organization.pk, policy.pk, rule.pk)
    before = _state(org)

    response = client.post(url, {**_rule(effect="deny"), "preview": "1"}, headers=HTMX)

    body = response.content.decode()
    assert "Preview: edit rule 1" in body and "2 principals lose" in body
    assert org.tech.user.email in body and org.readonly.user.email in body
    assert "had it: rule 1 of policy Finance-policy" in body
    assert _state(org) == before
    assert Rule.objects.get(pk=rule.pk).effect == "allow"


def test_removing_a_rule_previews_its_losers(org: Org, finance: tuple[Policy, Group]) -> None:
    policy, _ = finance
    rule = rule_services.rule_add(
        policy=policy, effect="allow", actions=[READ], scope="organization", actor=org.owner.user
    )
    client = org.client_for("owner")
    url = _url("rule_remove", org.organization.pk, policy.pk, rule.pk)
    before = _state(org)

    shown = client.post(url, {"preview": "1"}, headers=HTMX)

    body = shown.content.decode()
    assert "Preview: remove rule 1" in body and "2 principals lose" in body
    assert _state(org) == before
    confirmed = client.post(url, {"preview_digest": _digest(shown)})
    assert confirmed.status_code == 302 and not policy.rules.exists()
    event = AuditEvent.objects.filter(action="iam.policy.rule_removed").latest("occurred_at")
    assert event.data["preview"][READ]["lose"] == sorted(
        [org.tech.user.email, org.readonly.user.email]
    )


def test_a_guardrail_deny_previews_its_losers_but_never_owners(org: Org) -> None:
    client = org.client_for("owner")
    url = _url("guardrail_rule_add", org.organization.pk)
    before = _state(org)

    response = client.post(url, {**_rule(effect="deny"), "preview": "1"}, headers=HTMX)

    body = response.content.decode()
    assert "1 principal loses" in body and org.billing.user.email in body
    assert org.owner.user.email not in body
    assert _state(org) == before


def test_a_rule_on_chosen_projects_is_compared_in_each_and_in_every_project(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    project = ProjectFactory(organization=org.organization, name="Website")
    data = {
        "effect": "deny",
        "actions": "dns:zones:read",
        "scope": "projects",
        "projects": [str(project.pk)],
        "preview": "1",
    }
    response = org.client_for("owner").post(
        _url("rule_add", org.organization.pk, policy.pk), data, headers=HTMX
    )
    body = response.content.decode()
    # finance reaches tech (TechAccess) and readonly (ReadOnlyAccess): both lose it in
    # Website, and "in every project" (a deny in any of them takes that back).
    assert "<code>dns:zones:read</code> in Website" in body
    assert "<code>dns:zones:read</code> in every project" in body
    assert body.count("2 principals lose") == 2


# ----------------------------------------------------------------------- attachments


def test_previewing_an_attach_to_a_group_names_its_members(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization, name="Readers")
    rule_services.rule_add(
        policy=policy, effect="allow", actions=[READ], scope="organization", actor=org.owner.user
    )
    group = GroupFactory(organization=org.organization, name="Finance")
    group.members.add(org.tech, org.billing)
    client = org.client_for("owner")
    url = _url("policy_attach", org.organization.pk, policy.pk)
    before = _state(org)

    shown = client.post(url, {"group": str(group.pk), "preview": "1"}, headers=HTMX)

    body = shown.content.decode()
    assert 'id="attachments"' in body and "+1 principal gains" in body
    assert org.tech.user.email in body and org.billing.user.email not in body
    assert _state(org) == before
    confirmed = client.post(url, {"group": str(group.pk), "preview_digest": _digest(shown)})
    assert confirmed.status_code == 302
    assert PolicyAttachment.objects.filter(policy=policy, group=group).exists()
    event = AuditEvent.objects.filter(action="iam.policy.attached").latest("occurred_at")
    assert event.data["preview"][READ]["gain"] == [org.tech.user.email]


def test_previewing_a_detach_on_the_principal_panel(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, group = finance
    rule_services.rule_add(
        policy=policy, effect="allow", actions=[READ], scope="organization", actor=org.owner.user
    )
    client = org.client_for("owner")
    url = _url("principal_policy_detach", org.organization.pk, "group", group.pk, policy.pk)
    before = _state(org)

    shown = client.post(url, {"preview": "1"}, headers=HTMX)

    body = shown.content.decode()
    assert 'id="principal-policies"' in body and "1 principal loses" in body
    assert org.tech.user.email in body and org.readonly.user.email not in body
    assert _state(org) == before
    client.post(url, {"preview_digest": _digest(shown)})
    assert not PolicyAttachment.objects.filter(policy=policy, group=group).exists()
    event = AuditEvent.objects.filter(action="iam.policy.detached").latest("occurred_at")
    assert event.data["preview"][READ]["lose"] == [org.tech.user.email]


def test_a_plain_post_preview_is_a_page(org: Org, finance: tuple[Policy, Group]) -> None:
    policy, group = finance
    url = _url("principal_policy_detach", org.organization.pk, "group", group.pk, policy.pk)
    response = org.client_for("owner").post(url, {"preview": "1"})
    assert response.status_code == 200
    assert "<html" in response.content.decode() and "Confirm and save" in response.content.decode()


# ---------------------------------------------------------------------------- scale


def _preview_queries(org: Org, policy: Policy, group: Group) -> int:
    request = RequestFactory().post("/")
    request.organization = Organization.objects.get(pk=org.organization.pk)
    request.session = {}  # type: ignore[assignment]
    rules = compile_policy_rules([policy.pk])

    def change() -> list[CompiledRule]:
        attachment_services.policy_attach(policy=policy, principal=group, actor=org.owner.user)
        return []

    with CaptureQueriesContext(connection) as queries:
        diff = preview.access_diff(request, rules, change)
    assert diff.changed
    return len(queries)


def test_a_preview_costs_the_same_queries_whatever_the_number_of_principals(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    rule_services.rule_add(
        policy=policy, effect="allow", actions=[READ], scope="organization", actor=org.owner.user
    )
    group = GroupFactory(organization=org.organization)
    group.members.add(*MembershipFactory.create_batch(3, organization=org.organization))
    few = _preview_queries(org, policy, group)
    group.members.add(*MembershipFactory.create_batch(30, organization=org.organization))
    assert _preview_queries(org, policy, group) == few


def _request_for(organization: Organization) -> HttpRequest:
    request = RequestFactory().post("/")
    request.organization = Organization.objects.get(pk=organization.pk)
    request.session = {}  # type: ignore[assignment]
    return request


def _shown(diff: preview.AccessDiff) -> list[tuple[object, ...]]:
    return [
        (item.place.key, item.unchanged, item.counts, item.named, item.changed)
        for item in diff.places
    ]


def test_a_rule_change_previews_alike_on_the_fast_path_in_fewer_queries(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    actor = org.owner.user
    kept = rule_services.rule_add(
        policy=policy, effect="allow", actions=[UPDATE], scope="organization", actor=actor
    )

    def add() -> list[CompiledRule]:
        rule = rule_services.rule_add(
            policy=policy, effect="allow", actions=[READ], scope="organization", actor=actor
        )
        return compile_stored_rule(rule)

    def deny_instead() -> list[CompiledRule]:
        rule = rule_services.rule_update(
            rule=Rule.objects.get(pk=kept.pk),
            effect="deny",
            actions=[UPDATE, READ],
            scope="organization",
            actor=actor,
        )
        return compile_stored_rule(rule)

    def remove() -> list[CompiledRule]:
        rule_services.rule_remove(rule=Rule.objects.get(pk=kept.pk), actor=actor)
        return []

    def guardrail() -> list[CompiledRule]:  # binds everyone, not only the policy's holders
        rule = guardrail_services.guardrail_rule_add(
            organization=org.organization,
            effect="deny",
            actions=[READ],
            scope="organization",
            actor=actor,
        )
        return compile_stored_rule(rule)

    stored = compile_stored_rule(kept)
    for before, change in [([], add), (stored, deny_instead), (stored, remove), ([], guardrail)]:
        with CaptureQueriesContext(connection) as general_queries:
            general = preview.access_diff(_request_for(org.organization), before, change)
        with CaptureQueriesContext(connection) as fast_queries:
            fast = preview.access_diff(
                _request_for(org.organization), before, change, same_reach=True
            )
        assert general.changed, change.__name__
        assert _shown(fast) == _shown(general), change.__name__
        assert fast.digest == general.digest and fast.audit_data() == general.audit_data()
        assert len(fast_queries) < len(general_queries), change.__name__
    assert (
        policy.rules.count() == 1
        and not Policy.objects.filter(
            organization=org.organization, kind=Policy.Kind.GUARDRAIL
        ).exists()
    )


def test_the_rule_views_take_the_fast_path(
    org: Org, finance: tuple[Policy, Group], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, _ = finance
    rule = rule_services.rule_add(
        policy=policy, effect="allow", actions=[READ], scope="organization", actor=org.owner.user
    )
    seen: list[bool] = []
    diff = preview.access_diff

    def recorded(*args: object, same_reach: bool = False) -> preview.AccessDiff:
        seen.append(same_reach)
        return diff(*args, same_reach=same_reach)  # type: ignore[arg-type]

    monkeypatch.setattr(preview, "access_diff", recorded)
    client = org.client_for("owner")
    pk = org.organization.pk
    posts = [
        (_url("rule_add", pk, policy.pk), _rule()),
        (_url("rule_update", pk, policy.pk, rule.pk), _rule()),
        (_url("rule_remove", pk, policy.pk, rule.pk), {}),
        (_url("guardrail_rule_add", pk), _rule(effect="deny")),
    ]
    for url, data in posts:
        response = client.post(url, {**data, "preview": "1"}, headers=HTMX)
        assert response.status_code == 200 and "Confirm and save" in response.content.decode()
    assert seen == [True, True, True, True]


# ------------------------------------------------------------------------- property

ORG_ACTIONS = ("billing:invoices:read", "iam:users:list", "billing:*")
PROJECT_ACTIONS = ("dns:zones:read", "dns:zones:delete", "dns:*")
rule_specs = st.fixed_dictionaries(
    {
        "effect": st.sampled_from(("allow", "deny")),
        "scope": st.sampled_from(("organization", "all_projects", "projects")),
        "pick": st.lists(st.integers(0, 2), min_size=1, max_size=2, unique=True),
        "projects": st.lists(st.integers(0, 1), max_size=2, unique=True),
    }
)
changes = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 2), rule_specs),
    st.tuples(st.just("edit"), st.integers(0, 10), rule_specs),
    st.tuples(st.just("remove"), st.integers(0, 10), st.none()),
    st.tuples(st.just("attach"), st.integers(0, 2), st.integers(0, 4)),
    st.tuples(st.just("detach"), st.integers(0, 10), st.none()),
    st.tuples(st.just("guardrail"), st.just(0), rule_specs),
)
# Changes of rules only, which may take the preview's fast path (`same_reach`).
RULE_CHANGES = ("add", "edit", "remove", "guardrail")
worlds = st.fixed_dictionaries(
    {
        "rules": st.lists(st.tuples(st.integers(0, 2), rule_specs), min_size=1, max_size=5),
        "attachments": st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 4)), min_size=2, max_size=8
        ),
        "in_group": st.lists(st.integers(0, 2), max_size=3, unique=True),
        "guardrail": st.booleans(),
    }
)


def _rule_values(spec: dict, projects: list[Project]) -> dict:
    scope = spec["scope"]
    names = ORG_ACTIONS if scope == "organization" else PROJECT_ACTIONS
    chosen = [projects[i] for i in spec["projects"]] or projects[:1]
    return {
        "effect": spec["effect"],
        "actions": [names[i] for i in spec["pick"]],
        "scope": scope,
        "projects": chosen if scope == "projects" else [],
    }


def _decisions(
    members: Iterable[Membership | Application], places: Iterable[preview.Place]
) -> dict[str, set[str]]:
    """Who `decide` allows each place to, from rules compiled afresh (the oracle)."""
    allowed: dict[str, set[str]] = {}
    for subject in members:
        subject.refresh_from_db()
        principal = authz.principal_of(subject)
        rules = compile_rules_for(subject)
        kind = "application" if isinstance(subject, Application) else "user"
        for place in places:
            decision = decide(
                principal=principal,
                rules=rules,
                action=place.action,
                project_id=place.project_id,
                request=_no_facts(),
                resource=place.resource,
            )
            if decision.allowed:
                allowed.setdefault(place.key, set()).add(f"{kind}:{subject.pk}")
    return allowed


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds, change=changes, fast=st.booleans())
def test_the_preview_equals_the_difference_of_decisions(
    db: None, world: dict, change: tuple, fast: bool
) -> None:
    organization = OrganizationFactory()
    owner = MembershipFactory(organization=organization, is_owner=True)
    # The owner last: the first principals drawn (0) are the ones policies bind.
    members = [*MembershipFactory.create_batch(2, organization=organization), owner]
    app = ApplicationFactory(organization=organization)
    group = GroupFactory(organization=organization)
    group.members.add(*[members[i] for i in world["in_group"]])
    principals: list[Membership | Group | Application] = [*members, app, group]
    projects = ProjectFactory.create_batch(2, organization=organization)
    policies = PolicyFactory.create_batch(3, organization=organization)
    actor = owner.user
    for index, spec in world["rules"]:
        values = _rule_values(spec, projects)
        rule_services.rule_add(policy=policies[index], **values, actor=actor)
    if world["guardrail"]:
        guardrail = PolicyFactory(organization=organization, kind=Policy.Kind.GUARDRAIL)
        rule_services.rule_add(
            policy=guardrail,
            effect="deny",
            actions=["iam:users:list"],
            scope="organization",
            actor=actor,
        )
    for index, who in world["attachments"]:
        attachment_services.policy_attach(
            policy=policies[index], principal=principals[who], actor=actor
        )
    # The guardrail's rule too: editing or removing it binds everyone.
    rules = list(Rule.objects.filter(policy__organization=organization).order_by("pk"))
    attached = list(PolicyAttachment.objects.filter(policy__in=policies).order_by("pk"))

    kind, target, spec = change
    before: list[CompiledRule] = []
    apply: Callable[[], Iterable[CompiledRule]]
    if kind == "add":

        def apply() -> Iterable[CompiledRule]:
            values = _rule_values(spec, projects)
            return compile_stored_rule(
                rule_services.rule_add(policy=policies[target], **values, actor=actor)
            )
    elif kind in ("edit", "remove"):
        if not rules:
            return
        rule = rules[target % len(rules)]
        before = compile_stored_rule(rule)
        if kind == "edit":

            def apply() -> Iterable[CompiledRule]:
                fresh = Rule.objects.get(pk=rule.pk)
                values = _rule_values(spec, projects)
                if fresh.policy.kind == Policy.Kind.GUARDRAIL:
                    values["effect"] = "deny"  # guardrails only deny
                return compile_stored_rule(
                    rule_services.rule_update(rule=fresh, **values, actor=actor)
                )
        else:

            def apply() -> Iterable[CompiledRule]:
                rule_services.rule_remove(rule=Rule.objects.get(pk=rule.pk), actor=actor)
                return []
    elif kind == "guardrail":  # a deny for everyone, creating the guardrail policy if none

        def apply() -> Iterable[CompiledRule]:
            values = {**_rule_values(spec, projects), "effect": "deny"}
            return compile_stored_rule(
                guardrail_services.guardrail_rule_add(
                    organization=organization, **values, actor=actor
                )
            )
    elif kind == "attach":
        policy, principal = policies[target], principals[spec]
        before = compile_policy_rules([policy.pk])

        def apply() -> Iterable[CompiledRule]:
            attachment_services.policy_attach(policy=policy, principal=principal, actor=actor)
            return []
    else:
        if not attached:
            return
        attachment = attached[target % len(attached)]
        policy = attachment.policy
        principal = attachment.membership or attachment.group or attachment.application
        before = compile_policy_rules([policy.pk])

        def apply() -> Iterable[CompiledRule]:
            attachment_services.policy_detach(policy=policy, principal=principal, actor=actor)
            return []

    request = RequestFactory().post("/")
    request.organization = Organization.objects.get(pk=organization.pk)
    request.session = {}  # type: ignore[assignment]
    same_reach = fast and kind in RULE_CHANGES
    diff = preview.access_diff(request, before, apply, same_reach=same_reach)

    path = "same reach" if same_reach else "general"
    event(f"{kind}, {path}: {'a change' if diff.changed else 'no change'}")
    places = [item.place for item in diff.places]
    subjects = [*members, app]
    was = _decisions(subjects, places)
    apply()  # for real
    now = _decisions(subjects, places)
    for item in diff.places:
        key = item.place.key
        old, new = was.get(key, set()), now.get(key, set())
        ids = diff._ids.get(key, {})
        assert set(ids.get("gain", [])) == new - old, key
        assert set(ids.get("lose", [])) == old - new, key
        assert not ids.get("conditional"), key


def test_a_preview_leaves_nothing_in_the_shared_cache(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    client = org.client_for("owner")
    organization = Organization.objects.get(pk=org.organization.pk)
    assert org.tech.pk not in {row.id for row in who_can(organization, READ).iter_rows()}

    client.post(_url("rule_add", organization.pk, policy.pk), {**_rule(), "preview": "1"})

    # Computed afresh in the rolled-back transaction, under a version no state has: not
    # kept, and the answer as saved is unchanged.
    assert not [key for key in authz._cache if key.startswith(f"{organization.pk}:-")]
    assert org.tech.pk not in {row.id for row in who_can(organization, READ).iter_rows()}
