"""The rule form: its defaults, the stored condition read back into its fields, and the
scope it infers from ticked projects."""

from __future__ import annotations

import re
from typing import Any

import pytest

from organizations.models import Project
from policies.conditions.builder import build_condition
from policies.forms.rules import RuleForm, resource_types_of
from policies.models import Rule
from tests.conftest import Org
from tests.factories import PolicyFactory, ProjectFactory, ResourceFactory, RuleFactory

pytestmark = pytest.mark.django_db

OFFICE_HOURS = build_condition(
    ip_ranges=["10.0.0.0/8", "2001:db8::/32"],
    time_after="08:30",
    time_before="18:00",
    timezone="Europe/Paris",
    require_mfa=True,
)


def form_for(org: Org, data: Any = None, **kwargs: Any) -> RuleForm:
    projects = Project.objects.filter(organization=org.organization)
    return RuleForm(data, projects=projects, organization=org.organization, **kwargs)


def rule_with(org: Org, condition: str) -> Rule:
    policy = PolicyFactory(organization=org.organization)
    return RuleFactory(policy=policy, position=1, condition=condition)


def posted(form: RuleForm) -> dict[str, Any]:
    """What a browser posts for the form as it is shown, unchanged."""
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value in (None, False, [], ""):
            continue
        data[name] = "on" if value is True else value
    return data


def radios(form: RuleForm) -> dict[str, bool]:
    """The effect's choices and whether each is ticked, as the page renders them."""
    tags = re.findall(r"<input [^>]*>", str(form["effect"]))
    return {re.search(r'value="(\w+)"', tag)[1]: " checked" in tag for tag in tags}


def test_a_new_rule_allows_by_default(org: Org) -> None:
    assert radios(form_for(org)) == {"allow": True, "deny": False}
    assert radios(form_for(org, is_guardrail=True)) == {"deny": True}


def test_a_builder_condition_comes_back_in_the_builder_fields(org: Org) -> None:
    form = form_for(org, rule=rule_with(org, OFFICE_HOURS))
    assert form.initial["ip_ranges"] == "10.0.0.0/8\n2001:db8::/32"
    assert (form.initial["time_after"], form.initial["time_before"]) == ("08:30", "18:00")
    assert (form.initial["timezone"], form.initial["require_mfa"]) == ("Europe/Paris", True)
    assert form.initial["condition"] == "" and not form.custom_condition


def test_cel_the_builder_did_not_write_stays_in_the_cel_box(org: Org) -> None:
    form = form_for(org, rule=rule_with(org, 'principal.type == "application"'))
    assert form.initial["condition"] == 'principal.type == "application"'
    assert form.initial["ip_ranges"] == "" and not form.initial["require_mfa"]
    assert form.custom_condition


def test_builder_fields_and_typed_cel_come_back_apart(org: Org) -> None:
    office = build_condition(ip_ranges=["10.0.0.0/8"])
    form = form_for(org, rule=rule_with(org, f"({office}) && (request.mfa || true)"))
    assert (form.initial["ip_ranges"], form.initial["condition"]) == (
        "10.0.0.0/8",
        "request.mfa || true",
    )
    assert form.custom_condition


@pytest.mark.parametrize(
    "condition",
    [
        "",
        OFFICE_HOURS,
        build_condition(user_agent_contains='") || true || ("'),
        f'({OFFICE_HOURS}) && (principal.type == "user")',
        'principal.type == "application"',
    ],
)
def test_saving_an_unchanged_rule_keeps_its_condition(org: Org, condition: str) -> None:
    rule = rule_with(org, condition)
    form = form_for(org, posted(form_for(org, rule=rule)), rule=rule)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["condition"] == condition


def test_changing_a_read_back_range_replaces_it(org: Org) -> None:
    rule = rule_with(org, build_condition(ip_ranges=["10.0.0.0/8"]))
    data = {**posted(form_for(org, rule=rule)), "ip_ranges": "192.168.0.0/16"}
    form = form_for(org, data, rule=rule)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["condition"] == 'ip_in_range(request.ip, "192.168.0.0/16")'
    assert form.condition_warning() is None


def test_ticking_projects_under_the_default_scope_chooses_them(org: Org) -> None:
    web = ProjectFactory(organization=org.organization, name="web")
    data = {"effect": "allow", "actions": "compute:*", "scope": "organization"}
    form = form_for(org, {**data, "projects": [str(web.pk)]})
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["scope"], list(form.cleaned_data["projects"])) == ("projects", [web])


@pytest.mark.parametrize(
    ("actions", "scope", "named"),
    [
        ("iam:users:list", "organization", "Organization"),  # the actions need the organization
        ("compute:*", "all_projects", "All projects"),  # a scope chosen on purpose
    ],
)
def test_projects_ticked_under_another_scope_say_what_to_do(
    org: Org, actions: str, scope: str, named: str
) -> None:
    web = ProjectFactory(organization=org.organization)
    form = form_for(
        org, {"effect": "allow", "actions": actions, "scope": scope, "projects": [web.pk]}
    )
    assert not form.is_valid()
    assert form.errors["projects"] == [
        f"Projects are ticked but the scope is {named}: choose the scope “Chosen projects” "
        "to limit the rule to them, or untick them."
    ]


# ------------------------------------------------------------ chosen resources (#14)


def test_resources_ticked_under_the_default_scope_choose_them(org: Org) -> None:
    web = ResourceFactory(project=ProjectFactory(organization=org.organization))
    data = {"effect": "allow", "actions": "compute:instances:read", "scope": "organization"}
    form = form_for(org, {**data, "resources": [str(web.pk)]})
    assert form.is_valid(), form.errors
    assert form.rule_values()["scope"] == "resources"
    assert form.rule_values()["resources"] == [web]

    form = form_for(org, {**data, "scope": "all_projects", "resources": [str(web.pk)]})
    assert not form.is_valid()
    assert "Chosen resources" in form.errors["resources"][0]
    # Shown ticked again with the error.
    assert form.chosen_resources() == [web]


def test_another_organizations_resource_is_not_a_choice(org: Org) -> None:
    data = {"effect": "allow", "actions": "compute:instances:read", "scope": "resources"}
    form = form_for(org, {**data, "resources": [str(ResourceFactory().pk), "not-a-uuid"]})
    assert not form.is_valid() and "resources" in form.errors
    assert form.chosen_resources() == []


def test_an_edited_rule_shows_its_resources(org: Org) -> None:
    web = ResourceFactory(project=ProjectFactory(organization=org.organization))
    rule = rule_with(org, "")
    rule.scope = "resources"
    rule.save()
    rule.resources.set([web])
    assert form_for(org, rule=rule).chosen_resources() == [web]


def test_the_picker_filters_by_the_types_the_actions_name() -> None:
    assert resource_types_of(["compute:instances:read"]) == ["compute:instances"]
    assert set(resource_types_of(["*"])) == {"compute:instances", "storage:buckets", "dns:zones"}
    assert resource_types_of(["billing:invoices:read"]) == []
    assert resource_types_of(["compute:instances:read", "not an action"]) == []


def test_projects_are_a_search_keeping_the_ticked_ones(org: Org) -> None:
    """The chosen-projects field renders the ticked projects and a search, never every
    project; a foreign or unknown project is the field's error."""
    web, api = (
        ProjectFactory(organization=org.organization, name="web"),
        ProjectFactory(organization=org.organization, name="api"),
    )
    foreign = ProjectFactory()
    data = {"effect": "allow", "actions": "compute:*", "scope": "projects"}
    form = form_for(org, {**data, "projects": [str(web.pk)]})
    assert form.is_valid(), form.errors
    html = str(form["projects"])
    assert f'value="{web.pk}" checked' in html and str(api.pk) not in html
    assert 'name="projects_q"' in html and "/pick/rules/projects/" in html
    guardrail = form_for(org, is_guardrail=True)
    assert "/pick/guardrails/projects/" in str(guardrail["projects"])
    for value in (str(foreign.pk), "not-a-uuid"):
        form = form_for(org, {**data, "projects": [str(web.pk), value]})
        assert not form.is_valid() and "projects" in form.errors
        # Still ticked on the re-render with the error.
        assert f'value="{web.pk}" checked' in str(form["projects"])
