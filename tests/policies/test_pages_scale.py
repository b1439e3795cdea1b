"""The policy tools' pages at scale (issue #15): effective permissions page their grants
and summarise the actions held, the simulator's action options come prebuilt, and the
policy page brings its add-rule form when opened. Sizes and query counts stay flat as a
principal's policies grow."""

from __future__ import annotations

import re

import pytest
from django.forms import Select
from django.urls import reverse

from policies.api.policies import rule_out
from policies.authz import principal_of
from policies.forms.tools import action_choices
from policies.models import Rule
from policies.selectors.tools import rules_of
from policies.services import rules as rule_services
from policies.views.tools import GRANTS_PER_PAGE, action_options_html
from tests.conftest import Org
from tests.factories import (
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
    grant,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def tools_url(name: str, org: Org, *args: object) -> str:
    return reverse(f"iamtools:{name}", args=[org.organization.pk, *args])


def grants_on_page(body: str) -> list[str]:
    """The actions of the grant rows shown (the summary's are links, not rows of grants)."""
    return re.findall(r"<tr><td><code>([a-z:-]+)</code></td>", body)


def grant_projects(org: Org, count: int, actions: list[str]) -> None:
    """`count` more policies attached to tech, each on its own project."""
    for _ in range(count):
        project = ProjectFactory(organization=org.organization)
        grant(org.tech, actions=actions, projects=[project])


# ------------------------------------------------------------------- the tools' rules


def test_the_tools_read_attachments_afresh_and_compile_once_per_version(
    org: Org, django_assert_num_queries
) -> None:
    organization = org.organization
    principal = principal_of(org.tech)
    rules_of(org.tech, principal, organization)
    with django_assert_num_queries(1):  # the policies held; their rules are remembered
        rules_of(org.tech, principal, organization)
    # Attached without any version moving (a factory): seen at once all the same.
    policy = grant(org.tech, actions=["dns:zones:read"], scope=Rule.Scope.ALL_PROJECTS)
    labels = [rule.label for rule in rules_of(org.tech, principal, organization)]
    assert f"rule 1 of policy {policy.name}" in labels
    # A rule written through the services moves the version: its policy is compiled anew.
    rule_services.rule_add(
        policy=policy,
        effect=Rule.Effect.DENY,
        actions=["dns:zones:read"],
        scope=Rule.Scope.ALL_PROJECTS,
        actor=org.owner.user,
    )
    organization.refresh_from_db()
    rules = rules_of(org.tech, principal, organization)
    assert f"rule 2 of policy {policy.name}" in [rule.label for rule in rules]


# -------------------------------------------------------------- effective permissions


def test_effective_permissions_page_their_grants_and_sum_up_every_action(org: Org) -> None:
    client = org.client_for("owner")
    page = tools_url("effective_permissions", org, org.tech.pk)
    grant_projects(org, GRANTS_PER_PAGE, ["dns:zones:read"])
    response = client.get(page)
    body = response.content.decode()
    total = response.context["grant_count"]
    assert total > GRANTS_PER_PAGE
    assert len(grants_on_page(body)) == GRANTS_PER_PAGE
    assert f"Page 1 of {-(-total // GRANTS_PER_PAGE)}" in body
    # The summary names every action held, with its number of grants and where.
    held = {
        h: n
        for h, n in re.findall(
            r'<code class="action">([a-z:-]+)</code></a></td>'
            r"<td>[^<]*</td><td>(\d+)</td>",
            body,
        )
    }
    listed = [p.action for _, rows in response.context["services"] for p in rows]
    assert set(listed) <= set(held)
    assert held["dns:zones:read"] == str(GRANTS_PER_PAGE + 1)  # and TechAccess's own
    # One action's grants, all of them, and the second page holds the rest.
    one = client.get(page, {"action": "dns:zones:read"}).content.decode()
    assert grants_on_page(one) == ["dns:zones:read"] * GRANTS_PER_PAGE
    rest = client.get(page, {"action": "dns:zones:read", "page": 2}).content.decode()
    assert grants_on_page(rest) == ["dns:zones:read"]
    second = client.get(page, {"page": 2}).content.decode()
    assert len(grants_on_page(second)) == total - GRANTS_PER_PAGE


def test_effective_permissions_without_many_grants_list_them_all(org: Org) -> None:
    response = org.client_for("owner").get(tools_url("effective_permissions", org, org.tech.pk))
    body = response.content.decode()
    assert "held" not in response.context  # no summary: the grants are the summary
    assert len(grants_on_page(body)) == response.context["grant_count"]
    assert 'class="pagination"' not in body


def test_effective_permissions_ignore_an_unknown_action(org: Org) -> None:
    client = org.client_for("owner")
    page = tools_url("effective_permissions", org, org.tech.pk)
    everything = grants_on_page(client.get(page).content.decode())
    assert grants_on_page(client.get(page, {"action": "nope:x:y"}).content.decode()) == everything


def test_effective_permissions_grants_alone_with_htmx(org: Org) -> None:
    grant_projects(org, GRANTS_PER_PAGE, ["dns:zones:read"])
    response = org.client_for("owner").get(
        tools_url("effective_permissions", org, org.tech.pk),
        {"action": "dns:zones:read"},
        headers={**HTMX, "HX-Target": "grants"},
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="grants">')
    assert "Actions held" not in body and "<html" not in body
    assert grants_on_page(body) == ["dns:zones:read"] * GRANTS_PER_PAGE


def test_effective_permissions_size_and_queries_stay_flat(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    page = tools_url("effective_permissions", org, org.tech.pk)
    grant_projects(org, GRANTS_PER_PAGE, ["dns:zones:read", "dns:zones:list"])
    with django_assert_max_num_queries(12) as before:
        small = len(client.get(page).content)
    grant_projects(org, 2 * GRANTS_PER_PAGE, ["dns:zones:read", "dns:zones:list"])
    with django_assert_max_num_queries(len(before.captured_queries)):
        large = len(client.get(page).content)
    assert large < small * 1.1  # a page of grants either way, only the counts grew


def test_effective_permissions_escape_what_people_typed(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization, name="<b>bold</b>")
    RuleFactory(
        policy=policy,
        position=1,
        effect=Rule.Effect.DENY,
        actions=["billing:invoices:list"],
        condition='request.user_agent.contains("<i>")',
    )
    RuleFactory(
        policy=policy,
        position=2,
        actions=["dns:zones:read"],
        scope=Rule.Scope.ALL_PROJECTS,
        condition="request.mfa",
    )
    PolicyAttachmentFactory(policy=policy, membership=org.tech)
    body = (
        org.client_for("owner")
        .get(tools_url("effective_permissions", org, org.tech.pk))
        .content.decode()
    )
    assert "<b>bold</b>" not in body and "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "Rule 2 of policy &lt;b&gt;bold&lt;/b&gt;</td>" in body  # the grant's row
    assert "<i>" not in body and "&lt;i&gt;" in body  # the deny's condition


# ------------------------------------------------------------------------- simulator


@pytest.mark.parametrize("selected", ["compute:instances:create", "", None, "no:such:action"])
def test_simulator_action_options_are_django_s_select(selected: str | None) -> None:
    django_select = Select(choices=action_choices()).render("action", selected)
    ours = f'<select name="action">{action_options_html(selected)}</select>'
    assert re.sub(r"\s+", "", ours) == re.sub(r"\s+", "", django_select)


def test_simulator_keeps_the_action_chosen_and_flags_a_wrong_one(org: Org) -> None:
    client = org.client_for("owner")
    params = {"principal": f"user:{org.tech.pk}", "action": "billing:invoices:list"}
    body = client.get(tools_url("simulator", org), params).content.decode()
    assert '<option value="billing:invoices:list" selected>' in body
    refused = client.get(tools_url("simulator", org), {**params, "action": "no:such:action"})
    assert refused.status_code == 400
    assert re.search(
        r'<select name="action" required id="id_action" aria-invalid="true">',
        refused.content.decode(),
    )


# ------------------------------------------------------------------------ policy page


def test_the_policy_page_brings_the_add_rule_form_when_opened(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, position=1, actions=["dns:zones:read"])
    client = org.client_for("owner")
    page = reverse("policies:policy_detail", args=[org.organization.pk, policy.pk])
    rules = reverse("policies:rule_list", args=[org.organization.pk, policy.pk])
    body = client.get(page).content.decode()
    assert "Add a rule" in body and 'id="new-rule-form"' not in body
    assert f'hx-get="{rules}"' in body and 'href="?add=rule#new-rule-form"' in body
    # Opened with HTMX: the rules partial holds the form the page selects from it.
    partial = client.get(rules, headers=HTMX).content.decode()
    assert 'id="new-rule-form"' in partial and 'class="rule-form"' in partial
    # Without scripts: the link's page holds the form, opened.
    opened = client.get(page, {"add": "rule"}).content.decode()
    assert 'id="new-rule-form"' in opened and '<details class="add-rule" open>' in opened


def test_the_policy_page_queries_stay_flat_with_its_attachments(
    org: Org, django_assert_max_num_queries
) -> None:
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, position=1, actions=["dns:zones:read"])
    client = org.client_for("owner")
    page = reverse("policies:policy_detail", args=[org.organization.pk, policy.pk])
    with django_assert_max_num_queries(15) as small:
        client.get(page)
    for _ in range(10):
        member = MembershipFactory(organization=org.organization)
        PolicyAttachmentFactory(policy=policy, membership=member)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(page).status_code == 200


def test_the_policy_page_reads_the_places_only_of_rules_that_choose_them(
    org: Org, django_assert_max_num_queries
) -> None:
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, position=1, actions=["dns:zones:read"])
    client = org.client_for("owner")
    page = reverse("policies:policy_detail", args=[org.organization.pk, policy.pk])
    client.get(page)

    def places_read() -> tuple[str, list[str]]:
        with django_assert_max_num_queries(15) as queries:
            body = client.get(page).content.decode()
        sql = [q["sql"] for q in queries.captured_queries]
        return body, [t for t in ("rule_projects", "rule_resources") if any(t in q for q in sql)]

    assert places_read()[1] == []  # organization rules only: neither is read
    project = ProjectFactory(organization=org.organization, name="web-frontend")
    rule = RuleFactory(
        policy=policy, position=2, actions=["dns:zones:read"], scope=Rule.Scope.PROJECTS
    )
    rule.projects.set([project])
    body, read = places_read()
    assert read == ["rule_projects"] and "Projects: web-frontend" in body


def test_the_api_reads_a_rules_places_only_under_its_scope(django_assert_num_queries) -> None:
    rule = RuleFactory(actions=["dns:zones:read"])
    with django_assert_num_queries(0):
        out = rule_out(rule)
    assert out.projects == [] and out.resources == []
