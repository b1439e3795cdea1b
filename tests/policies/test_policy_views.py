from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from policies.models import Policy, Rule
from tests.conftest import Org, assert_access
from tests.factories import PolicyAttachmentFactory, PolicyFactory, ProjectFactory, RuleFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def url(name: str, org: Org, *args: object) -> str:
    return reverse(f"policies:{name}", args=[org.organization.pk, *args])


def custom_policy(org: Org, name: str = "Devs", **rule: object) -> Policy:
    policy = PolicyFactory(organization=org.organization, name=name)
    RuleFactory(policy=policy, position=1, **rule)
    return policy


def rule_data(**values: str | list[str]) -> dict[str, str | list[str]]:
    return {"effect": "allow", "actions": "iam:users:list", "scope": "organization", **values}


def assert_fragment(body: str, start: str) -> None:
    assert "<html" not in body
    assert body.lstrip().startswith(start), body[:200]


# --------------------------------------------------------------------------- list


def test_policy_list_shows_custom_and_managed_policies_with_counts(org: Org) -> None:
    policy = custom_policy(org, "Devs")
    RuleFactory(policy=policy, position=2)
    PolicyAttachmentFactory(policy=policy, membership=org.tech)
    response = org.client_for("owner").get(url("policy_list", org))
    rows = {p.name: p for p in response.context["page"]}
    assert (rows["Devs"].rule_count, rows["Devs"].attachment_count) == (2, 1)
    # Attachments of other organizations do not count.
    PolicyAttachmentFactory(policy=Policy.objects.get(name="TechAccess"))
    response = org.client_for("owner").get(url("policy_list", org))
    rows = {p.name: p for p in response.context["page"]}
    assert (rows["TechAccess"].rule_count, rows["TechAccess"].attachment_count) == (2, 1)
    body = response.content.decode()
    assert "Managed</span>" in body and "New policy" in body


def test_policy_list_has_an_empty_state_and_no_create_button_for_readers(org: Org) -> None:
    body = org.client_for("readonly").get(url("policy_list", org)).content.decode()
    assert "no custom policies yet" in body
    assert "New policy" not in body
    assert "ReadOnlyAccess" in body


def test_policy_list_hides_other_organizations_and_the_guardrail(org: Org) -> None:
    PolicyFactory(name="Elsewhere")
    PolicyFactory(organization=org.organization, kind="guardrail", name="Organization guardrails")
    body = org.client_for("owner").get(url("policy_list", org)).content.decode()
    assert "Elsewhere" not in body and "Organization guardrails" not in body


def test_policy_list_runs_the_same_queries_for_2_or_50_policies(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("readonly")
    for _ in range(2):
        PolicyAttachmentFactory(
            policy=custom_policy(org, name=f"small-{_}"), membership=org.readonly
        )
    with django_assert_max_num_queries(15) as small:
        client.get(url("policy_list", org))
    for i in range(48):
        custom_policy(org, name=f"big-{i}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url("policy_list", org))
    assert response.context["page"].paginator.count == 50 + 7


def test_policy_pages_role_matrix(org: Org) -> None:
    policy = custom_policy(org)
    reader = {"owner": 200, "tech": 200, "billing": 403, "readonly": 200, "outsider": 404}
    writer = {"owner": 200, "tech": 403, "billing": 403, "readonly": 403, "outsider": 404}
    assert_access(org, "get", url("policy_list", org), reader)
    assert_access(org, "get", url("policy_detail", org, policy.pk), reader)
    assert_access(org, "get", url("guardrails", org), reader)
    assert_access(org, "get", url("policy_create", org), writer)
    assert_access(org, "get", url("policy_update", org, policy.pk), writer)
    assert_access(org, "get", url("policy_delete", org, policy.pk), writer)
    rule = policy.rules.get()
    assert_access(org, "get", url("rule_update", org, policy.pk, rule.pk), writer)


@pytest.mark.parametrize(
    ("name", "action", "data"),
    [
        ("policy_create", "iam:policies:create", {"name": "New"}),
        ("policy_update", "iam:policies:update", {"name": "Renamed"}),
        ("policy_duplicate", "iam:policies:create", {}),
        ("policy_delete", "iam:policies:delete", {}),
        ("rule_add", "iam:policies:update", rule_data()),
        ("rule_update", "iam:policies:update", rule_data()),
        ("rule_move", "iam:policies:update", {"direction": "up"}),
        ("rule_remove", "iam:policies:update", {}),
        ("policy_attach", "iam:policies:attach", {}),
        ("policy_detach", "iam:policies:attach", {}),
        ("guardrail_rule_add", "iam:guardrails:update", rule_data(effect="deny")),
    ],
)
def test_hand_crafted_posts_are_refused_naming_the_permission(
    org: Org, name: str, action: str, data: dict[str, str]
) -> None:
    policy = custom_policy(org)
    rule = policy.rules.get()
    args = {
        "policy_create": (),
        "guardrail_rule_add": (),
        "rule_update": (policy.pk, rule.pk),
        "rule_move": (policy.pk, rule.pk),
        "rule_remove": (policy.pk, rule.pk),
        "policy_detach": (policy.pk, org.tech.pk),
    }.get(name, (policy.pk,))
    target = url(name, org, *args)
    for who in ("readonly", "billing"):
        response = org.client_for(who).post(target, data)
        assert response.status_code == 403
        assert action in response.content.decode()
    assert org.client_for("outsider").post(target, data).status_code == 404
    policy.refresh_from_db()
    assert policy.name == "Devs" and policy.rules.count() == 1


def test_another_organizations_policy_is_404(org: Org, owner_client: Client) -> None:
    foreign = PolicyFactory()
    rule = RuleFactory(policy=foreign)
    assert owner_client.get(url("policy_detail", org, foreign.pk)).status_code == 404
    assert owner_client.post(url("rule_add", org, foreign.pk), rule_data()).status_code == 404
    response = owner_client.post(url("rule_remove", org, foreign.pk, rule.pk))
    assert response.status_code == 404
    assert foreign.rules.count() == 1


# ----------------------------------------------------------------------- policies


def test_create_edit_and_delete_a_policy(org: Org, owner_client: Client) -> None:
    response = owner_client.post(
        url("policy_create", org), {"name": "Devs", "description": "d", "labels": "a, b"}
    )
    policy = Policy.objects.get(organization=org.organization, name="Devs")
    assert response.url == url("policy_detail", org, policy.pk)
    assert policy.labels == ["a", "b"]
    response = owner_client.post(
        url("policy_update", org, policy.pk), {"name": "Developers", "labels": ""}
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.name, policy.labels) == ("Developers", [])
    page = owner_client.get(url("policy_delete", org, policy.pk)).content.decode()
    assert "Delete policy Developers?" in page
    response = owner_client.post(url("policy_delete", org, policy.pk))
    assert response.url == url("policy_list", org)
    assert not Policy.objects.filter(pk=policy.pk).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"iam.policy.created", "iam.policy.updated", "iam.policy.deleted"} <= actions


def test_a_taken_name_is_a_clear_form_error(org: Org, owner_client: Client) -> None:
    custom_policy(org, "Devs")
    response = owner_client.post(url("policy_create", org), {"name": "DEVS"})
    assert response.status_code == 400
    assert "A policy named &quot;DEVS&quot; already exists." in response.content.decode()
    assert Policy.objects.filter(organization=org.organization).count() == 1


def test_duplicate_from_the_policy_page(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org, "Devs")
    response = owner_client.post(url("policy_duplicate", org, policy.pk))
    copy = Policy.objects.get(organization=org.organization, name="Copy of Devs")
    assert response.url == url("policy_detail", org, copy.pk)
    assert copy.rules.count() == 1


def test_managed_policy_page_shows_rules_without_edit_controls(
    org: Org, owner_client: Client
) -> None:
    managed = Policy.objects.get(name="TechAccess")
    body = owner_client.get(url("policy_detail", org, managed.pk)).content.decode()
    assert "ProjectsManager" in body
    assert "Add a rule" not in body and "Edit details" not in body and "Remove" not in body
    assert "Duplicate" in body


def test_writes_to_managed_policies_are_refused_not_crashing(
    org: Org, owner_client: Client
) -> None:
    managed = Policy.objects.get(name="TechAccess")
    rule = managed.rules.first()
    for target, data in [
        (url("policy_update", org, managed.pk), {"name": "Mine"}),
        (url("policy_delete", org, managed.pk), {}),
        (url("rule_add", org, managed.pk), rule_data()),
        (url("rule_update", org, managed.pk, rule.pk), rule_data()),
        (url("rule_move", org, managed.pk, rule.pk), {"direction": "down"}),
        (url("rule_remove", org, managed.pk, rule.pk), {}),
    ]:
        response = owner_client.post(target, data)
        assert response.status_code == 403
        assert "managed policy: it is read-only" in response.content.decode()
    assert managed.rules.order_by("position").first().pk == rule.pk
    assert Policy.objects.filter(name="TechAccess").exists()


def test_readers_see_a_policy_without_edit_controls(org: Org) -> None:
    policy = custom_policy(org)
    PolicyAttachmentFactory(policy=policy, membership=org.tech)
    body = org.client_for("readonly").get(url("policy_detail", org, policy.pk)).content.decode()
    assert "projects:projects:list" in body and org.tech.user.email in body
    for control in ("Add a rule", "Edit details", "Remove", "Detach", ">Attach<", "Delete"):
        assert control not in body


# -------------------------------------------------------------------------- rules


def test_add_a_rule_with_htmx_returns_the_rules_fragment(org: Org, owner_client: Client) -> None:
    project = ProjectFactory(organization=org.organization, name="web")
    policy = custom_policy(org)
    response = owner_client.post(
        url("rule_add", org, policy.pk),
        {
            "effect": "allow",
            "permission_sets": ["InstancesReadOnly"],
            "actions": "storage:buckets:list\n\n",
            "scope": "projects",
            "projects": [str(project.pk)],
            "ip_ranges": "10.0.0.0/8\n192.168.0.0/16",
            "time_after": "08:00",
            "time_before": "18:30",
            "timezone": "Europe/Paris",
            "condition": 'request.user_agent.startsWith("Mozilla")',
        },
        headers=HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert_fragment(body, '<section id="rules"')
    rule = policy.rules.get(position=2)
    assert rule.actions == ["InstancesReadOnly", "storage:buckets:list"]
    assert list(rule.projects.all()) == [project]
    assert rule.condition.startswith('((ip_in_range(request.ip, "10.0.0.0/8") ||')
    assert rule.condition.endswith('&& (request.user_agent.startsWith("Mozilla"))')
    assert "Rule saved." in body and "web" in body


def test_add_a_rule_with_a_plain_post_redirects_to_the_policy(
    org: Org, owner_client: Client
) -> None:
    policy = custom_policy(org)
    response = owner_client.post(url("rule_add", org, policy.pk), rule_data(require_mfa="on"))
    assert response.url == url("policy_detail", org, policy.pk)
    assert policy.rules.get(position=2).condition == "request.mfa"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (rule_data(actions="compute:instances:list"), "is a project-level action"),
        (rule_data(actions=""), "Tick a permission set or type at least one action."),
        (rule_data(condition="request.ip =="), "Line 1"),
        (rule_data(condition="request.nope"), "request.nope"),
        (rule_data(ip_ranges="10.0.0.300/8"), "10.0.0.300/8"),
        (rule_data(time_after="25:00", time_before="08:00"), "25:00"),
        (rule_data(scope="projects", actions="compute:*"), "Choose at least one project"),
    ],
)
@pytest.mark.parametrize("htmx", [True, False])
def test_an_invalid_rule_is_refused_inline_and_nothing_saved(
    org: Org, owner_client: Client, data: dict[str, str], message: str, htmx: bool
) -> None:
    policy = custom_policy(org)
    before = org.organization.authz_version
    response = owner_client.post(
        url("rule_add", org, policy.pk), data, headers=HTMX if htmx else {}
    )
    body = response.content.decode()
    assert response.status_code == (200 if htmx else 400)
    assert message in body.replace("&quot;", '"')
    assert 'class="errorlist' in body
    assert policy.rules.count() == 1
    org.organization.refresh_from_db()
    assert org.organization.authz_version == before


def test_edit_a_rule_in_place(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org)
    rule = policy.rules.get()
    edit_url = url("rule_update", org, policy.pk, rule.pk)
    form = owner_client.get(edit_url, headers=HTMX)
    body = form.content.decode()
    assert_fragment(body, '<section id="rules"')
    assert f'id="rule-{rule.pk}" class="editing"' in body
    assert "projects:projects:list" in body  # the current actions fill the form
    page = owner_client.get(edit_url).content.decode()
    assert "<html" in page and "Edit rule 1" in page
    response = owner_client.post(edit_url, rule_data(effect="deny"), headers=HTMX)
    assert_fragment(response.content.decode(), '<section id="rules"')
    rule.refresh_from_db()
    assert (rule.effect, rule.actions) == ("deny", ["iam:users:list"])
    refused = owner_client.post(edit_url, rule_data(actions="nope:nope:nope"), headers=HTMX)
    assert "Unknown action" in refused.content.decode().replace("&quot;", '"')
    rule.refresh_from_db()
    assert rule.actions == ["iam:users:list"]


def test_move_and_remove_rules_with_htmx(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org)
    second = RuleFactory(policy=policy, position=2, actions=["billing:*"])
    response = owner_client.post(
        url("rule_move", org, policy.pk, second.pk), {"direction": "up"}, headers=HTMX
    )
    assert_fragment(response.content.decode(), '<section id="rules"')
    assert policy.rules.order_by("position").first().pk == second.pk
    first = policy.rules.get(position=2)
    response = owner_client.post(url("rule_remove", org, policy.pk, second.pk), headers=HTMX)
    assert_fragment(response.content.decode(), '<section id="rules"')
    assert list(policy.rules.values_list("pk", "position")) == [(first.pk, 1)]
    plain = owner_client.post(url("rule_remove", org, policy.pk, first.pk))
    assert plain.url == url("policy_detail", org, policy.pk)
    assert not policy.rules.exists()


def test_cancelling_an_edit_returns_the_rules(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org)
    response = owner_client.get(url("rule_list", org, policy.pk), headers=HTMX)
    assert_fragment(response.content.decode(), '<section id="rules"')
    assert owner_client.get(url("rule_list", org, policy.pk)).status_code == 302


def test_editing_an_ip_rule_shows_its_range_in_the_builder(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org, condition='ip_in_range(request.ip, "10.0.0.0/8")')
    rule = policy.rules.get()
    body = owner_client.get(url("rule_update", org, policy.pk, rule.pk), headers=HTMX)
    form = body.context["edit_form"]
    assert (form["ip_ranges"].value(), form["condition"].value()) == ("10.0.0.0/8", "")
    assert "cannot show" not in body.content.decode()
    owner_client.post(
        url("rule_update", org, policy.pk, rule.pk),
        rule_data(ip_ranges="192.168.0.0/16"),
        headers=HTMX,
    )
    rule.refresh_from_db()
    assert rule.condition == 'ip_in_range(request.ip, "192.168.0.0/16")'


def test_editing_a_custom_condition_says_it_is_kept_as_cel(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org, condition='principal.type == "user"')
    rule = policy.rules.get()
    body = owner_client.get(url("rule_update", org, policy.pk, rule.pk), headers=HTMX)
    assert body.context["edit_form"]["condition"].value() == 'principal.type == "user"'
    assert "holds CEL the fields above cannot show" in body.content.decode()


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize(
    ("data", "warning"),
    [
        (
            rule_data(
                ip_ranges="10.0.0.0/8", condition='ip_in_range(request.ip, "192.168.0.0/16")'
            ),
            "false for every sample request",
        ),
        (rule_data(condition="1 == 1"), "true for every sample request"),
    ],
)
def test_a_condition_never_or_always_true_is_saved_with_a_warning(
    org: Org, owner_client: Client, data: dict[str, str], warning: str, htmx: bool
) -> None:
    policy = custom_policy(org)
    response = owner_client.post(
        url("rule_add", org, policy.pk), data, headers=HTMX if htmx else {}, follow=not htmx
    )
    body = response.content.decode()
    assert "Rule saved." in body
    assert f'<p class="message warning" role="status">Its condition was {warning}' in body
    assert policy.rules.filter(position=2).exists()


def test_an_ordinary_condition_is_saved_without_a_warning(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org)
    response = owner_client.post(
        url("rule_add", org, policy.pk), rule_data(ip_ranges="10.0.0.0/8"), headers=HTMX
    )
    assert "Rule saved." in response.content.decode()
    assert "message warning" not in response.content.decode()


def test_ticking_a_project_under_the_default_scope_scopes_the_rule_to_it(
    org: Org, owner_client: Client
) -> None:
    web = ProjectFactory(organization=org.organization, name="web")
    policy = custom_policy(org)
    response = owner_client.post(
        url("rule_add", org, policy.pk),
        rule_data(actions="compute:*", projects=[str(web.pk)]),  # scope left at organization
        headers=HTMX,
    )
    assert "Rule saved." in response.content.decode()
    rule = policy.rules.get(position=2)
    assert (rule.scope, list(rule.projects.all())) == ("projects", [web])


# ---------------------------------------------------------------- condition tester


def test_condition_tester_evaluates_the_current_request_and_typed_values(
    org: Org, owner_client: Client
) -> None:
    data = {"ip_ranges": "10.0.0.0/8", "test_ip": "10.1.2.3"}
    response = owner_client.post(url("condition_test", org), data, REMOTE_ADDR="192.0.2.1")
    results = response.context["results"]
    assert [label for label, _ in results] == ["Your current request", "The values typed in"]
    assert results[0][1]["value"] is False and results[0][1]["facts"]["ip"] == "192.0.2.1"
    assert results[1][1]["value"] is True
    fragment = owner_client.post(
        url("condition_test", org), data, headers=HTMX, REMOTE_ADDR="192.0.2.1"
    ).content.decode()
    assert "<html" not in fragment
    assert 0 < fragment.index(">false<") < fragment.index(">true<")


def test_condition_tester_uses_time_and_mfa_typed_in(org: Org, owner_client: Client) -> None:
    response = owner_client.post(
        url("condition_test", org),
        {
            "time_after": "09:00",
            "time_before": "17:00",
            "require_mfa": "on",
            "test_time": "2026-11-20T10:00",
            "test_mfa": "on",
        },
    )
    assert "<html" in response.content.decode()  # the plain POST gets a page
    assert [r["value"] for _, r in response.context["results"]][1] is True


def test_condition_tester_shows_the_compile_error(org: Org, owner_client: Client) -> None:
    response = owner_client.post(
        url("condition_test", org), {"condition": "request.ip +"}, headers=HTMX
    )
    assert "The condition is refused" in response.content.decode()
    response = owner_client.post(url("condition_test", org), {}, headers=HTMX)
    assert "No condition" in response.content.decode()


# --------------------------------------------------------------------- attachments


def test_attach_and_detach_take_effect_on_the_next_request(org: Org, owner_client: Client) -> None:
    tech = org.client_for("tech")
    invoices = reverse("organizations:invoice_list", args=[org.organization.pk])
    assert tech.get(invoices).status_code == 403  # and the rules are now cached
    policy = custom_policy(org, "Billing readers", actions=["BillingReadOnly"])
    response = owner_client.post(
        url("policy_attach", org, policy.pk), {"membership": str(org.tech.pk)}, headers=HTMX
    )
    body = response.content.decode()
    assert_fragment(body, '<section id="attachments"')
    assert org.tech.user.email in body
    assert tech.get(invoices).status_code == 200
    response = owner_client.post(url("policy_detach", org, policy.pk, org.tech.pk))
    assert response.url == url("policy_detail", org, policy.pk)
    assert tech.get(invoices).status_code == 403
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "iam.policy.attached" in actions and "iam.policy.detached" in actions


def test_attach_refuses_users_of_other_organizations(org: Org, owner_client: Client) -> None:
    policy = custom_policy(org)
    stranger = PolicyAttachmentFactory().membership
    response = owner_client.post(
        url("policy_attach", org, policy.pk), {"membership": str(stranger.pk)}
    )
    assert response.status_code == 400
    assert not policy.attachments.exists()
    response = owner_client.post(url("policy_detach", org, policy.pk, stranger.pk))
    assert response.status_code == 404


# ---------------------------------------------------------------------- guardrails


def test_guardrail_denies_everyone_but_owners(org: Org, owner_client: Client) -> None:
    projects = reverse("organizations:project_list", args=[org.organization.pk])
    tech = org.client_for("tech")
    assert tech.get(projects).status_code == 200
    page = owner_client.get(url("guardrails", org)).content.decode()
    assert "everyone in the organization except owners" in page
    assert not Policy.objects.filter(kind="guardrail").exists()  # created on first edit
    response = owner_client.post(
        url("guardrail_rule_add", org),
        rule_data(effect="deny", actions="projects:projects:list"),
        headers=HTMX,
    )
    assert_fragment(response.content.decode(), '<section id="rules"')
    guardrail = Policy.objects.get(kind="guardrail", organization=org.organization)
    assert guardrail.rules.count() == 1
    assert tech.get(projects).status_code == 403
    assert owner_client.get(projects).status_code == 200
    assert AuditEvent.objects.filter(action="iam.guardrail.updated").exists()
    # The guardrail's rules are edited with the same rule URLs as any policy.
    rule = guardrail.rules.get()
    owner_client.post(url("rule_remove", org, guardrail.pk, rule.pk))
    assert tech.get(projects).status_code == 200
    detail = owner_client.get(url("policy_detail", org, guardrail.pk))
    assert detail.url == url("guardrails", org)


def test_guardrail_refuses_allow_rules(org: Org, owner_client: Client) -> None:
    response = owner_client.post(url("guardrail_rule_add", org), rule_data(effect="allow"))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Rule.objects.filter(policy__kind="guardrail").exists()


def test_guardrails_cannot_be_attached(org: Org, owner_client: Client) -> None:
    guardrail = PolicyFactory(organization=org.organization, kind="guardrail")
    response = owner_client.post(
        url("policy_attach", org, guardrail.pk), {"membership": str(org.tech.pk)}
    )
    assert response.status_code == 400
    assert "cannot be attached" in response.content.decode()
