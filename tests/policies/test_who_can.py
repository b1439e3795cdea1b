"""Who can: the principals an action is allowed to, with their path, condition or what
blocks them; the console page, its CSV, and the resource page's section."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from organizations.models import Membership
from organizations.services.organizations import organization_bump_authz_version
from policies.authz import resource_facts
from policies.evaluator import CompiledRuleSet
from policies.models import Policy, PolicyAttachment
from policies.selectors import who_can as who_can_selectors
from policies.selectors.who_can import WhoCan, WhoCanRow, who_can, who_can_counts
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    OrganizationFactory,
    PolicyFactory,
    ProjectFactory,
    ResourceFactory,
    RuleFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.django_db


def _rows(answer: WhoCan, **filters: str) -> dict[str, WhoCanRow]:
    return {row.label: row for row in answer.iter_rows(**filters)}


def _policy(org: Org, *rules: dict[str, object], kind: str = Policy.Kind.CUSTOM) -> Policy:
    policy = PolicyFactory(organization=org.organization, kind=kind)
    for position, rule in enumerate(rules, start=1):
        projects = rule.pop("projects", ())
        resources = rule.pop("resources", ())
        created = RuleFactory(policy=policy, position=position, **rule)
        created.projects.set(projects)
        created.resources.set(resources)
    return policy


def _guardrail(org: Org, **rule: object) -> Policy:
    return _policy(org, {"effect": "deny", **rule}, kind=Policy.Kind.GUARDRAIL)


def _attach(policy: Policy, principal: object) -> None:
    field = PolicyAttachment.principal_field(principal)  # type: ignore[arg-type]
    PolicyAttachment.objects.create(
        policy=policy,
        organization=policy.organization or principal.organization,
        **{field: principal},
    )


@pytest.fixture(autouse=True)
def _compile_on_every_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests add policies with factories between answers, without the version bump
    every service makes: each answer compiles afresh (the per-version cache is tested on
    its own below)."""
    monkeypatch.setattr(
        who_can_selectors,
        "_rule_set",
        lambda organization: CompiledRuleSet(who_can_selectors._organization_rules(organization)),
    )


# ------------------------------------------------------------------------- selector


def test_direct_grant_and_owner(org: Org) -> None:
    rows = _rows(who_can(org.organization, "billing:invoices:read"))
    billing = rows[org.billing.user.email]
    assert billing.status == "allowed" and billing.type == "user" and billing.id == org.billing.pk
    assert [step.rule.policy_name for step in billing.paths] == ["BillingAccess"]
    assert billing.paths[0].direct and billing.paths[0].groups == ()
    assert "directly" in billing.path_text
    owner = rows[org.owner.user.email]
    assert owner.status == "owner" and owner.path_text == "owner"
    # tech and read-only: no policy grants it
    assert set(rows) == {org.billing.user.email, org.owner.user.email}


def test_through_a_group_names_the_group(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Finance")
    member = MembershipFactory(organization=org.organization)
    group.members.add(member, org.billing)
    application = ApplicationFactory(organization=org.organization, name="ledger")
    group.applications.add(application)
    policy = _policy(org, {"actions": ["billing:invoices:list"]})
    _attach(policy, group)
    _attach(policy, org.billing)
    rows = _rows(who_can(org.organization, "billing:invoices:list"))
    (step,) = rows[member.user.email].paths
    assert not step.direct and step.groups == ("Finance",)
    assert step.text == f"rule 1 of policy {policy.name}, through group Finance"
    both = [s for s in rows[org.billing.user.email].paths if s.rule.policy_id == str(policy.pk)]
    assert both[0].direct and both[0].groups == ("Finance",)
    assert rows["ledger"].type == "application" and rows["ledger"].status == "allowed"


def test_suspended_members_are_left_out_and_counted(org: Org) -> None:
    org.billing.status = Membership.Status.SUSPENDED
    org.billing.save()
    deactivated = MembershipFactory(
        organization=org.organization, user=UserFactory(is_active=False)
    )
    grant(deactivated, actions=["billing:invoices:read"])
    answer = who_can(org.organization, "billing:invoices:read")
    assert set(_rows(answer)) == {org.owner.user.email}
    assert answer.counts["suspended"] == 2 and answer.counts["owner"] == 1


def test_a_deny_or_a_guardrail_blocks_and_is_named(org: Org) -> None:
    deny = grant(org.billing, effect="deny", actions=["billing:invoices:read"])
    rows = _rows(who_can(org.organization, "billing:invoices:read"))
    blocked = rows[org.billing.user.email]
    assert blocked.status == "blocked" and blocked.blocked_by.policy_name == deny.name
    assert blocked.blocked_text == f"rule 1 of policy {deny.name}"
    assert [step.rule.policy_name for step in blocked.paths] == ["BillingAccess"]  # what it blocks

    guardrail = _guardrail(org, actions=["projects:projects:list"])
    rows = _rows(who_can(org.organization, "projects:projects:list"))
    tech = rows[org.tech.user.email]
    assert tech.status == "blocked" and tech.blocked_by.is_guardrail
    assert tech.blocked_text == f"guardrail rule 1 of policy {guardrail.name}"
    assert rows[org.owner.user.email].status == "owner"  # guardrails never bind owners


def test_deny_only_policies_grant_nothing(org: Org) -> None:
    grant(org.readonly, effect="deny", actions=["billing:invoices:read"])
    assert org.readonly.user.email not in _rows(who_can(org.organization, "billing:invoices:read"))


def test_conditional_allow_is_reported_not_evaluated(org: Org) -> None:
    grant(org.readonly, actions=["billing:invoices:read"], condition="request.mfa")
    row = _rows(who_can(org.organization, "billing:invoices:read"))[org.readonly.user.email]
    assert row.status == "conditional" and row.conditions == ("request.mfa",)
    assert row.condition_text == "allowed if (request.mfa)"


def test_conditional_deny_makes_an_allow_conditional(org: Org) -> None:
    _guardrail(org, actions=["billing:invoices:read"], condition='request.ip == "10.0.0.1"')
    row = _rows(who_can(org.organization, "billing:invoices:read"))[org.billing.user.email]
    assert row.status == "conditional"
    assert row.condition_text == 'allowed unless (request.ip == "10.0.0.1")'


def test_broken_condition_fails_closed_as_the_evaluator_does(org: Org) -> None:
    grant(org.readonly, actions=["billing:invoices:read"], condition="nonsense((")
    deny = grant(org.billing, effect="deny", actions=["billing:invoices:read"], condition="((")
    rows = _rows(who_can(org.organization, "billing:invoices:read"))
    assert org.readonly.user.email not in rows  # never allows
    billing = rows[org.billing.user.email]
    assert billing.status == "blocked" and billing.blocked_by.policy_name == deny.name


def test_chosen_projects_scope(org: Org) -> None:
    alpha = ProjectFactory(organization=org.organization)
    beta = ProjectFactory(organization=org.organization)
    grant(org.readonly, actions=["compute:instances:create"], projects=[alpha])
    assert org.readonly.user.email in _rows(
        who_can(org.organization, "compute:instances:create", alpha.pk)
    )
    assert org.readonly.user.email not in _rows(
        who_can(org.organization, "compute:instances:create", beta.pk)
    )
    # "in every project": a chosen-projects allow does not cover it
    assert org.readonly.user.email not in _rows(
        who_can(org.organization, "compute:instances:create")
    )


def test_chosen_resources_scope(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    web = ResourceFactory(project=project)
    db = ResourceFactory(project=project)
    grant(org.readonly, actions=["compute:instances:update"], resources=[web])
    on_web = _rows(
        who_can(org.organization, "compute:instances:update", resource=resource_facts(web))
    )
    on_db = _rows(
        who_can(org.organization, "compute:instances:update", resource=resource_facts(db))
    )
    assert on_web[org.readonly.user.email].status == "allowed"
    assert org.readonly.user.email not in on_db
    # tech's TechAccess covers every project, so every resource
    assert on_db[org.tech.user.email].status == "allowed"


def test_tag_condition_is_reported_as_conditional(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    web = ResourceFactory(project=project, tags={"team": "web"})
    condition = 'resource.tags["team"] == principal.tags["team"]'
    grant(
        org.readonly,
        actions=["compute:instances:delete"],
        scope="all_projects",
        condition=condition,
    )
    row = _rows(
        who_can(org.organization, "compute:instances:delete", resource=resource_facts(web))
    )[org.readonly.user.email]
    assert row.status == "conditional" and row.conditions == (condition,)


def test_other_organizations_never_appear(org: Org) -> None:
    other = OrganizationFactory()
    stranger = MembershipFactory(organization=other)
    billing_access = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")
    PolicyAttachment.objects.create(policy=billing_access, organization=other, membership=stranger)
    other_group = GroupFactory(organization=other)
    other_group.members.add(MembershipFactory(organization=other))
    PolicyAttachment.objects.create(policy=billing_access, organization=other, group=other_group)
    answer = who_can(org.organization, "billing:invoices:read")
    labels = set(_rows(answer))
    assert labels == {org.billing.user.email, org.owner.user.email}
    assert answer.total == 2


def test_unknown_action_allows_nobody(org: Org) -> None:
    answer = who_can(org.organization, "nope:nope:nope")
    assert answer.total == 0 and list(answer.iter_rows()) == []


def test_search_status_filter_and_sort(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    for name in ("zed", "amy", "bob"):
        group.members.add(
            MembershipFactory(
                organization=org.organization, user=UserFactory(email=f"{name}@x.test")
            )
        )
    _attach(_policy(org, {"actions": ["billing:invoices:list"]}), group)
    # The search matches full names too, and the factory's are random ("Amy …" happens).
    User.objects.filter(memberships__organization=org.organization).update(full_name="")
    answer = who_can(org.organization, "billing:invoices:list")
    labels = [row.label for row in answer.iter_rows()]
    assert labels == sorted(labels)
    assert [row.label for row in answer.iter_rows(search="amy")] == ["amy@x.test"]
    assert [row.label for row in answer.iter_rows(status="owner")] == [org.owner.user.email]
    page = answer.page(1, search="x.test")
    assert [row.label for row in page] == ["amy@x.test", "bob@x.test", "zed@x.test"]


def _crowd(org: Org, size: int, **rule: object) -> None:
    """`size` members and applications reached directly and through two groups, by
    policies of one rule (`rule`, default: allow billing:invoices:list)."""
    rule = {"actions": ["billing:invoices:list"], **rule}
    groups = [GroupFactory(organization=org.organization) for _ in range(2)]
    policies = [_policy(org, dict(rule)) for _ in range(3)]
    for group, policy in zip(groups, policies, strict=False):
        _attach(policy, group)
    for n in range(size):
        member = MembershipFactory(organization=org.organization)
        groups[n % 2].members.add(member)
        if n % 3 == 0:
            _attach(policies[2], member)
        if n % 5 == 0:
            groups[0].applications.add(ApplicationFactory(organization=org.organization))


def _queries(org: Org) -> int:
    with CaptureQueriesContext(connection) as captured:
        answer = who_can(org.organization, "billing:invoices:list")
        list(answer.page(1))
    return len(captured)


def test_query_count_is_flat(org: Org) -> None:
    _crowd(org, 3)
    small = _queries(org)
    _crowd(org, 60)
    assert who_can(org.organization, "billing:invoices:list").total > 60
    assert _queries(org) == small


# --------------------------------------------------------------------------- console


def _url(org: Org, **query: object) -> str:
    base = reverse("iamtools:who_can", args=[org.organization.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_page_lists_principals_with_their_path(org: Org) -> None:
    response = org.client_for("readonly").get(_url(org, action="billing:invoices:read"))
    assert response.status_code == 200
    body = response.content.decode()
    assert org.billing.user.email in body and "BillingAccess" in body and "Owner" in body
    assert "in the organization" in body


def test_search_as_you_type_answers_the_results_only(org: Org) -> None:
    response = org.client_for("readonly").get(
        _url(org, action="billing:invoices:read", q=org.billing.user.email),
        headers={"HX-Request": "true", "HX-Target": "who-can-results"},
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="who-can-results">')
    assert org.billing.user.email in body and org.owner.user.email not in body
    assert "format=csv" in body  # the export follows the search


def test_section_hidden_without_the_simulator_permission(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    resource = ResourceFactory(project=project)
    grant(org.billing, actions=["compute:instances:read"], scope="all_projects")
    url = reverse("organizations:resource_detail", args=[org.organization.pk, resource.pk])
    response = org.client_for("billing").get(url)
    assert response.status_code == 200 and "Who can act on it" not in response.content.decode()


def test_page_without_action_shows_the_form(org: Org) -> None:
    response = org.client_for("readonly").get(_url(org))
    assert response.status_code == 200 and b'name="action"' in response.content


def test_project_is_a_search_picker_keeping_the_chosen_one(org: Org) -> None:
    web = ProjectFactory(organization=org.organization, name="web")
    api = ProjectFactory(organization=org.organization, name="api")
    client = org.client_for("readonly")
    body = client.get(_url(org)).content.decode()
    assert 'name="project_q"' in body and "/pick/simulator/projects/" in body
    assert str(web.pk) not in body and str(api.pk) not in body  # no list of projects
    response = client.get(_url(org, action="billing:invoices:read", project=web.pk))
    assert response.status_code == 400 and "project" in response.context["form"].errors
    body = response.content.decode()
    assert f'name="project" value="{web.pk}" checked' in body and str(api.pk) not in body
    assert client.get(_url(org, action="billing:invoices:read", project="junk")).status_code == 400
    # Without scripts, the search reloads the page with the matches.
    body = client.get(_url(org, project_q="ap")).content.decode()
    assert f'name="project" value="{api.pk}"' in body and str(web.pk) not in body


def test_page_refuses_an_unknown_action(org: Org) -> None:
    response = org.client_for("readonly").get(_url(org, action="nope:nope:nope"))
    assert response.status_code == 400


def test_page_is_guarded(org: Org) -> None:
    assert (
        org.client_for("billing").get(_url(org, action="billing:invoices:read")).status_code == 403
    )
    assert (
        org.client_for("outsider").get(_url(org, action="billing:invoices:read")).status_code == 404
    )


def test_another_organizations_project_or_resource_is_404(org: Org) -> None:
    foreign = ResourceFactory()
    client = org.client_for("owner")
    url = _url(org, action="compute:instances:read", project=foreign.project.pk)
    assert client.get(url).status_code == 404
    assert (
        client.get(_url(org, action="compute:instances:read", resource=foreign.pk)).status_code
        == 404
    )


def test_resource_action_must_fit_the_resource(org: Org) -> None:
    resource = ResourceFactory(project=ProjectFactory(organization=org.organization))
    client = org.client_for("owner")
    assert client.get(_url(org, action="dns:zones:read", resource=resource.pk)).status_code == 400
    ok = client.get(_url(org, action="compute:instances:read", resource=resource.pk))
    assert ok.status_code == 200 and resource.name in ok.content.decode()


def test_csv_export_streams_every_row(org: Org) -> None:
    grant(org.readonly, actions=["billing:invoices:read"], condition="request.mfa")
    response = org.client_for("owner").get(_url(org, action="billing:invoices:read", format="csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    by_label = {row["label"]: row for row in rows}
    assert set(by_label) == {org.owner.user.email, org.billing.user.email, org.readonly.user.email}
    assert by_label[org.readonly.user.email]["condition"] == "allowed if (request.mfa)"
    assert by_label[org.owner.user.email]["status"] == "owner"


def test_resource_page_shows_who_can_act_on_it(org: Org) -> None:
    resource = ResourceFactory(project=ProjectFactory(organization=org.organization))
    url = reverse("organizations:resource_detail", args=[org.organization.pk, resource.pk])
    body = org.client_for("owner").get(url).content.decode()
    assert "Who can act on it" in body
    link = _url(org, action="compute:instances:delete", resource=resource.pk).replace("&", "&amp;")
    assert link in body


def test_resource_section_counts_match(org: Org) -> None:
    resource = ResourceFactory(project=ProjectFactory(organization=org.organization))
    answers = who_can_counts(
        org.organization,
        ["compute:instances:read", "compute:instances:delete"],
        resource_facts(resource),
    )
    # owner, tech (TechAccess: all projects) and read-only (ReadOnlyAccess reads)
    assert answers["compute:instances:read"].total == 3
    assert answers["compute:instances:delete"].total == 2


def test_resource_page_queries_do_not_grow_with_principals(org: Org) -> None:
    resource = ResourceFactory(project=ProjectFactory(organization=org.organization))
    url = reverse("organizations:resource_detail", args=[org.organization.pk, resource.pk])
    client = org.client_for("owner")
    rule = {"actions": ["compute:instances:*"], "scope": "all_projects"}

    def count() -> int:
        client.get(url)  # the owner's own decisions cached
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    _crowd(org, 3, **rule)
    before = count()
    _crowd(org, 40, **rule)
    assert count() == before
    answers = who_can_counts(org.organization, ["compute:instances:read"], resource_facts(resource))
    assert answers["compute:instances:read"].total > 40


def test_page_queries_do_not_grow_with_principals(org: Org) -> None:
    client = org.client_for("readonly")
    url = _url(org, action="billing:invoices:list")

    def count() -> int:
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    _crowd(org, 3)
    before = count()
    _crowd(org, 60)
    assert count() == before
    assert _queries(org) == 7  # rules (2), reach (4), the page (1; a search adds a count)


def test_the_rules_are_compiled_once_per_authorization_version(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real, cached rule set
    _crowd(org, 3)
    first = _queries(org)
    assert _queries(org) == first - 2  # the two queries of the compile, saved
    grant(org.readonly, actions=["billing:invoices:list"])
    organization_bump_authz_version(organization=org.organization)
    org.organization.refresh_from_db()
    assert _queries(org) == first
    rows = _rows(who_can(org.organization, "billing:invoices:list"))
    assert rows[org.readonly.user.email].status == "allowed"


# ------------------------------------------------------------------- change previews


def _summary(answers: list[WhoCan]) -> list[tuple[dict[str, int], dict[str, str]]]:
    return [
        (answer.counts, {row.label: row.status for row in answer.iter_rows()}) for answer in answers
    ]


@pytest.mark.parametrize("guardrail", [False, True])
def test_a_rule_change_is_answered_as_a_fresh_answer_on_either_side(
    org: Org, guardrail: bool
) -> None:
    """`answer_rule_change` (one read of whom policies reach, only the holders of the
    changed policy decided again; everyone for a guardrail) answers as `answer_all` does
    on the states before and after."""
    _crowd(org, 12)
    suspended = MembershipFactory(organization=org.organization, status="suspended")
    changed = _policy(org, {"actions": ["billing:invoices:list"]})
    _attach(changed, suspended)
    _attach(changed, org.readonly)
    questions = [
        who_can_selectors.Question(action, None, None)
        for action in ("billing:invoices:list", "billing:invoices:read", "iam:users:list")
    ]
    saved = who_can_selectors.saved_rules(org.organization)
    was = who_can_selectors.answer_all(org.organization, questions)

    if guardrail:
        changed = _guardrail(org, actions=["billing:invoices:list"])
    else:
        RuleFactory(policy=changed, position=2, effect="deny", actions=["billing:invoices:*"])
        RuleFactory(policy=changed, position=3, actions=["iam:users:list"])
    before, after = who_can_selectors.answer_rule_change(
        org.organization, questions, saved, {str(changed.pk)}
    )

    now = who_can_selectors.answer_all(org.organization, questions)
    assert _summary(before) == _summary(was)
    assert _summary(after) == _summary(now) != _summary(was)
    assert was[0].counts["suspended"] == 1  # counts (suspended too) are compared above
