"""The action catalogue: its data holds together and its helpers refuse what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import catalogue
from policies.catalogue import (
    ACTIONS,
    EXPLICIT_ONLY,
    MANAGED_POLICIES,
    PERMISSION_SETS,
    SERVICES,
    ActionScopeError,
    CatalogueError,
    ManagedPolicy,
    PermissionSet,
    RuleSpec,
    Service,
    UnknownActionError,
    expand_pattern,
    expand_rule_actions,
    validate_rule_actions,
)

ORG_ACTIONS = {
    "iam:users": "list read invite create update suspend remove reset-mfa reset-password",
    "iam:invitations": "list revoke resend",
    "iam:groups": "list read create update delete",
    "iam:applications": "list read create update delete",
    "iam:policies": "list read create update delete attach",
    "iam:guardrails": "update",
    "iam:api-keys": "list read create delete",
    "iam:simulator": "use",
    "organization:organization": "read update",
    "organization:security": "read update",
    "projects:projects": "list create",
    "billing:invoices": "list read",
    "billing:contact": "read update",
    "audit:events": "list export",
}
PROJECT_ACTIONS = {
    "projects:projects": "read update delete",
    "compute:instances": "list read create update delete",
    "storage:buckets": "list read create update delete",
    "dns:zones": "list read create update delete",
}


def _names(table: dict[str, str]) -> list[str]:
    return [f"{prefix}:{verb}" for prefix, verbs in table.items() for verb in verbs.split()]


@pytest.mark.parametrize("name", _names(ORG_ACTIONS))
def test_required_organization_actions_are_declared_at_organization_level(name: str) -> None:
    assert ACTIONS[name].level == "organization"


@pytest.mark.parametrize("name", _names(PROJECT_ACTIONS))
def test_required_project_actions_are_declared_at_project_level(name: str) -> None:
    assert ACTIONS[name].level == "project"


def test_services_are_the_platform_services() -> None:
    assert set(SERVICES) == {
        "iam",
        "organization",
        "projects",
        "billing",
        "audit",
        "compute",
        "storage",
        "dns",
    }


def test_every_action_is_service_resource_verb_with_a_description() -> None:
    for name, action in ACTIONS.items():
        service, resource, verb = name.split(":")
        assert service in SERVICES
        assert (action.service, action.resource, action.verb) == (service, resource, verb)
        assert action.description.endswith(".")
        assert action.level in ("organization", "project")


def test_ownership_is_a_flag_not_an_action() -> None:
    assert not [name for name in ACTIONS if "owner" in name]


def test_catalogue_mappings_are_read_only() -> None:
    with pytest.raises(TypeError):
        ACTIONS["iam:users:fly"] = ACTIONS["iam:users:list"]  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(PERMISSION_SETS))
def test_every_permission_set_is_single_level(name: str) -> None:
    levels = {ACTIONS[action].level for action in expand_pattern(name)}
    assert len(levels) == 1
    assert catalogue.permission_set_level(name) in levels


def test_required_permission_sets_exist() -> None:
    required = {
        "IAMReadOnly",
        "IAMManager",
        "BillingReadOnly",
        "BillingManager",
        "AuditReader",
        "OrganizationReadOnly",
        "OrganizationManager",
        "ProjectsReadOnly",
        "ProjectsFullAccess",
        "InstancesReadOnly",
        "InstancesFullAccess",
        "StorageReadOnly",
        "StorageFullAccess",
        "DNSReadOnly",
        "DNSFullAccess",
        "AllProductsReadOnly",
        "AllProductsFullAccess",
    }
    assert required <= set(PERMISSION_SETS)


def test_read_only_permission_sets_hold_only_reads() -> None:
    for name in PERMISSION_SETS:
        if name.endswith("ReadOnly") or name == "AuditReader":
            verbs = {ACTIONS[action].verb for action in expand_pattern(name)}
            assert verbs <= {"list", "read", "use", "export"}, name


def test_all_products_full_access_covers_every_product_action_and_nothing_else() -> None:
    products = {name for name in ACTIONS if name.split(":")[0] in ("compute", "storage", "dns")}
    assert expand_pattern("AllProductsFullAccess") == products


def test_iam_manager_set_holds_every_iam_action() -> None:
    every_iam = {n for n in ACTIONS if n.startswith("iam:")}
    assert expand_pattern("IAMManager") == every_iam - EXPLICIT_ONLY
    assert {"iam:guardrails:update", "iam:authorize:check"} == EXPLICIT_ONLY


def test_guardrail_permission_is_granted_only_by_name() -> None:
    # The people guardrails bind must not be able to edit them through a wildcard.
    assert "iam:guardrails:update" in EXPLICIT_ONLY
    for pattern in ("*", "iam:*", "IAMManager", "OrganizationManager"):
        assert "iam:guardrails:update" not in expand_pattern(pattern)
    assert all("iam:guardrails:update" not in _policy_actions(name) for name in MANAGED_POLICIES)
    assert expand_pattern("iam:guardrails:update") == {"iam:guardrails:update"}


# ------------------------------------------------------------------ managed policies


def _policy_actions(name: str) -> set[str]:
    return {
        action
        for rule in MANAGED_POLICIES[name].rules
        for action in expand_rule_actions(rule.actions, rule.scope)
    }


def test_required_managed_policies_exist() -> None:
    assert {
        "ReadOnlyAccess",
        "TechAccess",
        "BillingAccess",
        "IAMManager",
        "IAMReadOnly",
        "BillingReadOnly",
        "AuditReader",
    } <= set(MANAGED_POLICIES)


@pytest.mark.parametrize("name", sorted(MANAGED_POLICIES))
def test_managed_policy_rules_fit_their_scopes(name: str) -> None:
    for rule in MANAGED_POLICIES[name].rules:
        validate_rule_actions(rule.actions, rule.scope)
        assert rule.effect == "allow"


def test_tech_access_manages_projects_and_products_reads_iam_and_has_no_billing() -> None:
    actions = _policy_actions("TechAccess")
    assert "compute:instances:create" in actions
    assert "projects:projects:create" in actions
    assert "projects:projects:delete" in actions
    assert "iam:users:list" in actions
    assert "iam:users:invite" not in actions
    assert not {a for a in actions if a.startswith("billing:")}


def test_billing_access_is_billing_and_the_organizations_name_only() -> None:
    # The Billing role offers "invoices and billing contact": not the security settings
    # nor the projects (it once held OrganizationReadOnly).
    assert _policy_actions("BillingAccess") == expand_pattern("billing:*") | {
        "organization:organization:read"
    }


ALL_PRODUCTS = {"compute", "storage", "dns"}


@pytest.mark.parametrize(
    ("name", "services", "sees_security"),
    [
        ("ReadOnlyAccess", {"iam", "organization", "projects", *ALL_PRODUCTS}, True),
        ("TechAccess", {"iam", "organization", "projects", *ALL_PRODUCTS}, True),
        ("BillingAccess", {"billing", "organization"}, False),
        ("IAMManager", {"iam", "organization", "projects"}, True),
        ("IAMReadOnly", {"iam"}, False),
        ("BillingReadOnly", {"billing"}, False),
        ("AuditReader", {"audit"}, False),
    ],
)
def test_managed_policies_hold_what_their_description_says(
    name: str, services: set[str], sees_security: bool
) -> None:
    actions = _policy_actions(name)
    assert {ACTIONS[a].service for a in actions} == services
    assert ("organization:security:read" in actions) is sees_security


def test_read_only_access_changes_nothing_and_hides_billing() -> None:
    actions = _policy_actions("ReadOnlyAccess")
    assert {ACTIONS[a].verb for a in actions} <= {"list", "read", "use"}
    assert "compute:instances:read" in actions
    assert not {a for a in actions if a.startswith("billing:")}


# --------------------------------------------------------------------------- patterns


def test_expand_exact_action() -> None:
    assert expand_pattern("billing:invoices:read") == {"billing:invoices:read"}


def test_expand_star_is_every_action() -> None:
    assert expand_pattern("*") == set(ACTIONS) - EXPLICIT_ONLY


def test_expand_service_wildcard() -> None:
    assert expand_pattern("billing:*") == {
        "billing:invoices:list",
        "billing:invoices:read",
        "billing:contact:read",
        "billing:contact:update",
    }


def test_expand_resource_wildcard() -> None:
    assert expand_pattern("iam:users:*") == {n for n in ACTIONS if n.startswith("iam:users:")}
    assert "iam:invitations:list" not in expand_pattern("iam:users:*")


def test_unknown_name_is_refused_with_a_clear_message() -> None:
    with pytest.raises(UnknownActionError) as error:
        expand_pattern("iam:userz:list")
    assert str(error.value) == 'Unknown action or permission set "iam:userz:list".'


@pytest.mark.parametrize("pattern", ["iam:api:*", "nope:*", "iam:users:x:*"])
def test_wildcard_matching_no_action_is_refused(pattern: str) -> None:
    with pytest.raises(UnknownActionError):
        expand_pattern(pattern)


@pytest.mark.parametrize("pattern", ["iam:*:list", "*:users:list", "iam:us*", "iam:users:l*", "**"])
def test_unsupported_wildcards_are_refused(pattern: str) -> None:
    with pytest.raises(UnknownActionError, match="Unsupported wildcard"):
        expand_pattern(pattern)


def test_organization_action_on_projects_is_refused_with_message() -> None:
    with pytest.raises(ActionScopeError) as error:
        validate_rule_actions(["billing:invoices:read"], "all_projects")
    assert str(error.value) == (
        '"billing:invoices:read" is an organization-level action; it cannot be granted on projects.'
    )


def test_project_action_on_organization_is_refused_with_message() -> None:
    with pytest.raises(ActionScopeError) as error:
        validate_rule_actions(["compute:instances:create"], "organization")
    assert str(error.value) == (
        '"compute:instances:create" is a project-level action; '
        "it cannot be granted on the organization."
    )


def test_permission_set_of_the_other_level_is_refused() -> None:
    with pytest.raises(ActionScopeError, match='"BillingManager"'):
        validate_rule_actions(["BillingManager"], "projects")


def test_wildcard_keeps_only_the_actions_of_the_rule_scope() -> None:
    org = expand_rule_actions(["*"], "organization")
    projects = expand_rule_actions(["*"], "all_projects")
    assert {ACTIONS[a].level for a in org} == {"organization"}
    assert {ACTIONS[a].level for a in projects} == {"project"}
    assert org | projects == set(ACTIONS) - EXPLICIT_ONLY
    assert expand_rule_actions(["projects:*"], "projects") == {
        "projects:projects:read",
        "projects:projects:update",
        "projects:projects:delete",
    }


def test_wildcard_with_no_action_of_the_scope_is_refused() -> None:
    with pytest.raises(ActionScopeError, match='"billing:\\*" matches only organization-level'):
        validate_rule_actions(["billing:*"], "all_projects")


def test_rule_without_actions_is_refused() -> None:
    with pytest.raises(CatalogueError):
        validate_rule_actions([], "organization")


def test_unknown_scope_is_refused() -> None:
    with pytest.raises(CatalogueError, match="Unknown scope"):
        validate_rule_actions(["iam:users:list"], "everywhere")


_PATTERNS = sorted(ACTIONS) + sorted(PERMISSION_SETS) + ["*", "iam:*", "projects:*", "dns:*"]


def _fits(pattern: str, level: str) -> bool:
    levels = {ACTIONS[action].level for action in expand_pattern(pattern)}
    return level in levels if "*" in pattern else levels == {level}


@given(
    patterns=st.lists(st.sampled_from(_PATTERNS), min_size=1, max_size=6),
    scope=st.sampled_from(["organization", "all_projects", "projects"]),
)
def test_rule_actions_are_accepted_exactly_when_every_pattern_fits_the_scope(
    patterns: list[str], scope: str
) -> None:
    level = "organization" if scope == "organization" else "project"
    if all(_fits(pattern, level) for pattern in patterns):
        actions = expand_rule_actions(patterns, scope)
        assert all(ACTIONS[action].level == level for action in actions)
        for pattern in patterns:
            if "*" not in pattern:
                assert expand_pattern(pattern) <= actions
    else:
        with pytest.raises(ActionScopeError):
            expand_rule_actions(patterns, scope)


def test_actions_for_service_in_declaration_order() -> None:
    names = [action.name for action in catalogue.actions_for_service("billing")]
    assert names == [
        "billing:invoices:list",
        "billing:invoices:read",
        "billing:contact:read",
        "billing:contact:update",
    ]
    with pytest.raises(CatalogueError):
        catalogue.actions_for_service("nope")


def test_is_valid_action_accepts_only_exact_action_names() -> None:
    assert catalogue.is_valid_action("iam:users:list")
    assert not catalogue.is_valid_action("iam:users:*")
    assert not catalogue.is_valid_action("IAMManager")
    assert not catalogue.is_valid_action("iam:users:fly")


# ------------------------------------------------------------- consistency at import


def test_duplicate_action_is_refused_when_building() -> None:
    table = "iam:users:list org One.\niam:users:list org Two."
    with pytest.raises(CatalogueError, match="Duplicate action"):
        catalogue._build_actions(table, SERVICES)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("iam:users:list everywhere Bad level.", "Bad level"),
        ("iam:users org Too short.", "Malformed"),
        ("Iam:Users:List org Capitals.", "Malformed"),
        ("cloud:things:list org Unknown service.", "unknown service"),
    ],
)
def test_malformed_action_is_refused_when_building(line: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        catalogue._build_actions(line, SERVICES)


def test_duplicate_service_is_refused_when_building() -> None:
    with pytest.raises(CatalogueError, match="Duplicate service"):
        catalogue._build_services([Service("iam", "A", "a"), Service("iam", "B", "b")])


def test_mixed_level_permission_set_is_refused_when_building() -> None:
    mixed = PermissionSet("Mixed", "Both levels.", ("billing:invoices:read", "dns:zones:read"))
    with pytest.raises(CatalogueError, match="mixes organization- and project-level"):
        catalogue._build_permission_sets([mixed])


def test_permission_set_naming_a_later_set_is_refused_when_building() -> None:
    first = PermissionSet("First", "Names a later set.", ("Second",))
    second = PermissionSet("Second", "Later.", ("dns:zones:read",))
    with pytest.raises(UnknownActionError):
        catalogue._build_permission_sets([first, second])


def test_managed_policy_rule_not_fitting_its_scope_is_refused_when_building() -> None:
    bad = ManagedPolicy(
        "Bad", "Billing on projects.", (RuleSpec("allow", ("billing:*",), "all_projects"),)
    )
    with pytest.raises(CatalogueError, match='Managed policy "Bad" rule 1'):
        catalogue._check_managed_policies([bad])
