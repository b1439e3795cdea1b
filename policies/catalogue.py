"""The action catalogue: every action, permission set and managed policy, declared once.

Pure data and helpers, no Django import, so the evaluator, the API and the views share
one source of truth. The catalogue checks its own consistency at import: a duplicate
name, a malformed action, a permission set mixing levels or a managed policy whose rule
does not fit its scope raises `CatalogueError` before any request is served.

Vocabulary:

- an *action* is `service:resource:verb` with a *level*: `organization` (granted by an
  organization-scoped rule) or `project` (granted by a rule scoped to all projects or to
  chosen projects);
- a *pattern* is what a rule's author writes: an action name, a permission-set name, or a
  wildcard `*`, `service:*`, `service:resource:*`;
- a *permission set* is a named bundle of patterns, all of one level;
- a *managed policy* is a built-in policy shared by every organization.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Level = Literal["organization", "project"]
RuleScope = Literal["organization", "all_projects", "projects", "resources"]

ORGANIZATION: Level = "organization"
PROJECT: Level = "project"
LEVELS: tuple[Level, ...] = (ORGANIZATION, PROJECT)
SCOPES: tuple[RuleScope, ...] = ("organization", "all_projects", "projects", "resources")


class CatalogueError(ValueError):
    """The catalogue itself is inconsistent (raised at import) or a lookup failed."""


class UnknownActionError(CatalogueError):
    """A pattern names no action, permission set or matching wildcard."""


class ActionScopeError(CatalogueError):
    """A rule's actions do not fit its scope (organization vs projects)."""


@dataclass(frozen=True, slots=True)
class Service:
    key: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    level: Level
    description: str

    @property
    def service(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def resource(self) -> str:
        return self.name.split(":")[1]

    @property
    def verb(self) -> str:
        return self.name.rsplit(":", 1)[1]


@dataclass(frozen=True, slots=True)
class PermissionSet:
    name: str
    description: str
    patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    effect: Literal["allow", "deny"]
    actions: tuple[str, ...]
    scope: Literal["organization", "all_projects"]


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    name: str
    description: str
    rules: tuple[RuleSpec, ...]


# --------------------------------------------------------------------------- services

_SERVICES: tuple[Service, ...] = (
    Service(
        "iam",
        "Identity and Access Management",
        "Users, groups, applications, policies.",
    ),
    Service(
        "organization",
        "Organization",
        "The organization's profile and security settings.",
    ),
    Service("projects", "Projects", "Projects that hold the organization's resources."),
    Service("billing", "Billing", "Invoices and the billing contact."),
    Service("audit", "Audit trail", "The record of every change and sign-in."),
    Service("compute", "Instances", "Virtual machines running in a project."),
    Service("storage", "Object Storage", "Buckets of objects stored in a project."),
    Service("dns", "Domains and DNS", "DNS zones served for a project."),
)

# ---------------------------------------------------------------------------- actions
# One line per action: name, level (org | project), description. Declaration order is the
# order listings use (list, read, create, update, delete).

_ACTION_TABLE = """
iam:users:list                   org     List the organization's users.
iam:users:read                   org     See a user's profile, groups, policies and MFA status.
iam:users:invite                 org     Invite an existing account (guest) to join by email.
iam:users:create                 org     Create member accounts owned by this organization.
iam:users:update                 org     Change a user's groups and profile details.
iam:users:suspend                org     Suspend a user, and reactivate a suspended one.
iam:users:remove                 org     Remove a user from the organization.
iam:users:reset-mfa              org     Reset a member's MFA and unlock a member locked for no MFA.
iam:users:reset-password         org     Send a member a password reset.
iam:invitations:list             org     List pending and past invitations.
iam:invitations:revoke           org     Revoke a pending invitation.
iam:invitations:resend           org     Send a pending invitation's email again.
iam:groups:list                  org     List the organization's groups.
iam:groups:read                  org     See a group's members and attached policies.
iam:groups:create                org     Create groups.
iam:groups:update                org     Rename a group and change its members.
iam:groups:delete                org     Delete groups.
iam:applications:list            org     List the organization's applications.
iam:applications:read            org     See an application's groups, policies and API keys.
iam:applications:create          org     Create applications (non-human principals).
iam:applications:update          org     Rename an application and change its groups.
iam:applications:delete          org     Delete applications and their API keys.
iam:policies:list                org     List the organization's policies and the managed policies.
iam:policies:read                org     See a policy's rules and where it is attached.
iam:policies:create              org     Create policies.
iam:policies:update              org     Change a policy's name, description, labels and rules.
iam:policies:delete              org     Delete policies.
iam:policies:attach              org     Attach policies to, and detach them from, principals.
iam:guardrails:update            org     Change the guardrails (only granted by name, no wildcard).
iam:api-keys:list                org     List the organization's API keys (never their secrets).
iam:api-keys:read                org     See an API key's bearer, expiry and last use.
iam:api-keys:create              org     Create API keys for yourself or for applications.
iam:api-keys:delete              org     Delete API keys, including other principals' keys.
iam:simulator:use                org     Ask the policy simulator what a principal may do, and why.
iam:authorize:check              org     Ask the evaluator about any principal (API /authorize).
organization:organization:read   org     See the organization's name and profile.
organization:organization:update org     Rename the organization and change its profile.
organization:security:read       org     See MFA, lock-out, session and API key lifetime settings.
organization:security:update     org     Change security settings, including audit retention.
projects:projects:list           org     List every project of the organization.
projects:projects:create         org     Create projects.
projects:projects:read           project See a project's details.
projects:projects:update         project Rename a project and change its description.
projects:projects:delete         project Delete a project.
billing:invoices:list            org     List invoices.
billing:invoices:read            org     See and download an invoice.
billing:contact:read             org     See the billing contact and address.
billing:contact:update           org     Change the billing contact and address.
audit:events:list                org     Browse and filter the audit trail.
audit:events:export              org     Export the audit trail as CSV or JSON.
compute:instances:list           project List instances in a project.
compute:instances:read           project See an instance's details.
compute:instances:create         project Create instances.
compute:instances:update         project Change, start and stop instances.
compute:instances:delete         project Delete instances.
storage:buckets:list             project List buckets in a project.
storage:buckets:read             project See a bucket's details.
storage:buckets:create           project Create buckets.
storage:buckets:update           project Change a bucket's settings.
storage:buckets:delete           project Delete buckets.
dns:zones:list                   project List DNS zones in a project.
dns:zones:read                   project See a zone and its records.
dns:zones:create                 project Create DNS zones.
dns:zones:update                 project Change a zone's records.
dns:zones:delete                 project Delete DNS zones.
"""

# -------------------------------------------------------------------- permission sets
# A set may name actions, wildcards or earlier sets; each must hold one level only.

_PERMISSION_SETS: tuple[PermissionSet, ...] = (
    PermissionSet(
        "IAMReadOnly",
        "See users, invitations, groups, applications, policies and API keys; "
        "use the policy simulator.",
        (
            "iam:users:list",
            "iam:users:read",
            "iam:invitations:list",
            "iam:groups:list",
            "iam:groups:read",
            "iam:applications:list",
            "iam:applications:read",
            "iam:policies:list",
            "iam:policies:read",
            "iam:api-keys:list",
            "iam:api-keys:read",
            "iam:simulator:use",
        ),
    ),
    PermissionSet("IAMManager", "Every IAM action.", ("iam:*",)),
    PermissionSet(
        "BillingReadOnly",
        "See invoices and the billing contact.",
        (
            "billing:invoices:list",
            "billing:invoices:read",
            "billing:contact:read",
        ),
    ),
    PermissionSet("BillingManager", "Every billing action.", ("billing:*",)),
    PermissionSet("AuditReader", "Browse and export the audit trail.", ("audit:*",)),
    PermissionSet(
        "OrganizationReadOnly",
        "See the organization, its security settings and the list of its projects.",
        (
            "organization:organization:read",
            "organization:security:read",
            "projects:projects:list",
        ),
    ),
    PermissionSet(
        "OrganizationManager",
        "See and change the organization and its security settings; list its projects.",
        ("organization:*", "projects:projects:list"),
    ),
    PermissionSet(
        "ProjectsManager",
        "List every project and create projects (organization level).",
        ("projects:projects:list", "projects:projects:create"),
    ),
    PermissionSet("ProjectsReadOnly", "See projects.", ("projects:projects:read",)),
    PermissionSet(
        "ProjectsFullAccess",
        "See, change and delete projects.",
        (
            "projects:projects:read",
            "projects:projects:update",
            "projects:projects:delete",
        ),
    ),
    PermissionSet(
        "InstancesReadOnly",
        "List and see instances.",
        ("compute:instances:list", "compute:instances:read"),
    ),
    PermissionSet("InstancesFullAccess", "Every instance action.", ("compute:*",)),
    PermissionSet(
        "StorageReadOnly",
        "List and see buckets.",
        ("storage:buckets:list", "storage:buckets:read"),
    ),
    PermissionSet("StorageFullAccess", "Every bucket action.", ("storage:*",)),
    PermissionSet("DNSReadOnly", "List and see DNS zones.", ("dns:zones:list", "dns:zones:read")),
    PermissionSet("DNSFullAccess", "Every DNS action.", ("dns:*",)),
    PermissionSet(
        "AllProductsReadOnly",
        "List and see every product resource (instances, buckets, DNS zones).",
        ("InstancesReadOnly", "StorageReadOnly", "DNSReadOnly"),
    ),
    PermissionSet(
        "AllProductsFullAccess",
        "Every action on product resources (instances, buckets, DNS zones).",
        ("InstancesFullAccess", "StorageFullAccess", "DNSFullAccess"),
    ),
)

# ------------------------------------------------------------------- managed policies
# A policy spanning organization- and project-level actions needs one rule per scope.


def _allow(scope: Literal["organization", "all_projects"], *patterns: str) -> RuleSpec:
    return RuleSpec("allow", tuple(patterns), scope)


_MANAGED_POLICIES: tuple[ManagedPolicy, ...] = (
    ManagedPolicy(
        "ReadOnlyAccess",
        "See everything except billing and the audit trail; change nothing.",
        (
            _allow("organization", "IAMReadOnly", "OrganizationReadOnly"),
            _allow("all_projects", "ProjectsReadOnly", "AllProductsReadOnly"),
        ),
    ),
    ManagedPolicy(
        "TechAccess",
        "Create and manage projects and every product resource; see IAM, the organization "
        "and its security settings; no billing.",
        (
            _allow("organization", "IAMReadOnly", "OrganizationReadOnly", "ProjectsManager"),
            _allow("all_projects", "ProjectsFullAccess", "AllProductsFullAccess"),
        ),
    ),
    ManagedPolicy(
        "BillingAccess",
        "Manage invoices and the billing contact; see the organization's name and profile.",
        # Not OrganizationReadOnly: the security settings and the projects are not billing's.
        (_allow("organization", "BillingManager", "organization:organization:read"),),
    ),
    ManagedPolicy(
        "IAMManager",
        "Manage users, groups, applications, policies and API keys; see the organization "
        "and its security settings.",
        (_allow("organization", "IAMManager", "OrganizationReadOnly"),),
    ),
    ManagedPolicy(
        "IAMReadOnly",
        "See users, invitations, groups, applications, policies and API keys; use the policy "
        "simulator.",
        (_allow("organization", "IAMReadOnly"),),
    ),
    ManagedPolicy(
        "BillingReadOnly",
        "See invoices and the billing contact.",
        (_allow("organization", "BillingReadOnly"),),
    ),
    ManagedPolicy(
        "AuditReader",
        "Browse and export the audit trail.",
        (_allow("organization", "AuditReader"),),
    ),
)

# ------------------------------------------------------------- build and self-checks

_ACTION_NAME = re.compile(r"^[a-z]+:[a-z]+(?:-[a-z]+)*:[a-z]+(?:-[a-z]+)*$")
_SET_NAME = re.compile(r"^[A-Z][A-Za-z]*$")


def _build_services(declared: Iterable[Service]) -> dict[str, Service]:
    services: dict[str, Service] = {}
    for service in declared:
        if service.key in services:
            raise CatalogueError(f'Duplicate service "{service.key}".')
        services[service.key] = service
    return services


def _build_actions(table: str, services: Mapping[str, Service]) -> dict[str, Action]:
    levels = {"org": ORGANIZATION, "project": PROJECT}
    actions: dict[str, Action] = {}
    for line in table.strip().splitlines():
        name, level, description = line.split(maxsplit=2)
        if not _ACTION_NAME.match(name):
            raise CatalogueError(f'Malformed action name "{name}".')
        if name.split(":", 1)[0] not in services:
            raise CatalogueError(f'Action "{name}" names an unknown service.')
        if level not in levels:
            raise CatalogueError(f'Bad level "{level}" for "{name}": use org or project.')
        if name in actions:
            raise CatalogueError(f'Duplicate action "{name}".')
        actions[name] = Action(name, levels[level], description)
    return actions


SERVICES: Mapping[str, Service] = MappingProxyType(_build_services(_SERVICES))
ACTIONS: Mapping[str, Action] = MappingProxyType(_build_actions(_ACTION_TABLE, SERVICES))


# ----------------------------------------------------------------------- resource types
# The things the platform's services register in projects (organizations.models.Resource):
# `service:resource`, whose actions are the catalogue's `service:resource:*`.


@dataclass(frozen=True, slots=True)
class ResourceType:
    key: str  # "compute:instances"
    singular: str
    plural: str

    @property
    def actions(self) -> tuple[str, ...]:
        """Its actions in declaration order (list, read, create, update, delete)."""
        prefix = f"{self.key}:"
        return tuple(name for name in ACTIONS if name.startswith(prefix))

    def action(self, verb: str) -> str:
        name = f"{self.key}:{verb}"
        if name not in ACTIONS:
            raise CatalogueError(f'"{self.key}" has no action "{verb}".')
        return name


_RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("compute:instances", "Instance", "Instances"),
    ResourceType("storage:buckets", "Bucket", "Buckets"),
    ResourceType("dns:zones", "DNS zone", "DNS zones"),
)
RESOURCE_TYPES: Mapping[str, ResourceType] = MappingProxyType(
    {resource_type.key: resource_type for resource_type in _RESOURCE_TYPES}
)
for _type in _RESOURCE_TYPES:
    # Each type has the five verbs, all project-level: a resource lives in a project.
    if [ACTIONS[a].verb for a in _type.actions] != ["list", "read", "create", "update", "delete"]:
        raise CatalogueError(f'Resource type "{_type.key}" needs list/read/create/update/delete.')
    if any(ACTIONS[a].level != PROJECT for a in _type.actions):
        raise CatalogueError(f'Resource type "{_type.key}" has organization-level actions.')

# The verbs decided on one resource; `list` and `create` are decided on the project.
PER_RESOURCE_VERBS = frozenset(("read", "update", "delete"))
# Each action on a resource type -> that type's key; the per-resource ones apart.
RESOURCE_TYPE_OF: Mapping[str, str] = MappingProxyType(
    {action: t.key for t in _RESOURCE_TYPES for action in t.actions}
)
PER_RESOURCE_ACTIONS: Mapping[str, str] = MappingProxyType(
    {a: key for a, key in RESOURCE_TYPE_OF.items() if ACTIONS[a].verb in PER_RESOURCE_VERBS}
)


# Actions only granted by name: no wildcard (`*`, `iam:*`) of an allow, and so no managed
# policy or permission set built from one, holds them. Guardrails bind every non-owner, so
# the people they bind (IAM managers included) must not be able to edit them. A deny's
# wildcard does cover them: denying `iam:*` denies them too.
# `AUTHORIZE_CHECK` makes a key a decision point for the platform's other services: it
# answers for every principal of the organization, a capability for a service account
# granted on purpose, not one an IAM manager's `iam:*` (or any `*` policy) should carry.
GUARDRAIL_EDIT = "iam:guardrails:update"
AUTHORIZE_CHECK = "iam:authorize:check"
EXPLICIT_ONLY: frozenset[str] = frozenset({GUARDRAIL_EDIT, AUTHORIZE_CHECK})


def _match_wildcard(pattern: str, *, deny: bool = False) -> frozenset[str] | None:
    """Actions matched by a wildcard pattern, or None when `pattern` is not a wildcard.
    The `EXPLICIT_ONLY` actions only for a deny."""
    if "*" not in pattern:
        return None
    excluded = frozenset() if deny else EXPLICIT_ONLY
    if pattern == "*":
        return frozenset(ACTIONS) - excluded
    parts = pattern.split(":")
    if parts[-1] != "*" or "*" in pattern[:-1] or len(parts) not in (2, 3):
        raise UnknownActionError(
            f'Unsupported wildcard "{pattern}": use "*", "service:*" or "service:resource:*".'
        )
    prefix = pattern[:-1]  # keeps the trailing colon: "iam:users:" cannot match "iam:usersx:"
    matched = frozenset(
        name for name in ACTIONS if name.startswith(prefix) and name not in excluded
    )
    if not matched:
        raise UnknownActionError(f'The wildcard "{pattern}" matches no action.')
    return matched


def expand_pattern(pattern: str, *, deny: bool = False) -> frozenset[str]:
    """The catalogue actions a pattern stands for (never empty).

    `pattern` is an exact action name, a permission-set name, or a wildcard `*`,
    `service:*` or `service:resource:*`. Raises `UnknownActionError` otherwise.
    """
    return _expand(pattern, _SET_ACTIONS, deny=deny)


def _expand(
    pattern: str, set_actions: Mapping[str, frozenset[str]], *, deny: bool = False
) -> frozenset[str]:
    if pattern in ACTIONS:
        return frozenset((pattern,))
    if pattern in set_actions:
        return set_actions[pattern]
    matched = _match_wildcard(pattern, deny=deny)
    if matched is None:
        raise UnknownActionError(f'Unknown action or permission set "{pattern}".')
    return matched


def _levels(actions: Iterable[str]) -> set[Level]:
    return {ACTIONS[name].level for name in actions}


def _build_permission_sets(
    declared: Iterable[PermissionSet],
) -> tuple[dict[str, PermissionSet], dict[str, frozenset[str]]]:
    """The sets by name and their expanded actions.

    Built in declaration order, so a set may only name sets declared before it: no cycle.
    """
    sets: dict[str, PermissionSet] = {}
    set_actions: dict[str, frozenset[str]] = {}
    for permission_set in declared:
        name = permission_set.name
        if name in sets:
            raise CatalogueError(f'Duplicate permission set "{name}".')
        if not _SET_NAME.match(name):
            raise CatalogueError(f'Permission set name "{name}" must be CamelCase letters.')
        if not permission_set.patterns:
            raise CatalogueError(f'Permission set "{name}" is empty.')
        expanded: set[str] = set()
        for pattern in permission_set.patterns:
            expanded |= _expand(pattern, set_actions)
        if len(_levels(expanded)) != 1:
            raise CatalogueError(
                f'Permission set "{name}" mixes organization- and project-level actions.'
            )
        set_actions[name] = frozenset(expanded)
        sets[name] = permission_set
    return sets, set_actions


_sets, _SET_ACTIONS = _build_permission_sets(_PERMISSION_SETS)
PERMISSION_SETS: Mapping[str, PermissionSet] = MappingProxyType(_sets)


def _scope_level(scope: str) -> Level:
    if scope == "organization":
        return ORGANIZATION
    if scope in ("all_projects", "projects", "resources"):
        return PROJECT
    raise CatalogueError(
        f'Unknown scope "{scope}": use organization, all_projects, projects or resources.'
    )


def _scope_words(level: Level) -> str:
    return "the organization" if level == ORGANIZATION else "projects"


def expand_rule_actions(
    patterns: Iterable[str], scope: str, *, deny: bool = False
) -> frozenset[str]:
    """The actions a rule grants or denies, refusing what does not fit its scope.

    `scope` is `organization`, `all_projects`, `projects` or `resources` (project-level
    here; which of them fit chosen resources is the evaluator's check). An action name or permission
    set must be of the scope's level (`ActionScopeError` otherwise). A wildcard keeps only
    the actions of the scope's level, and must keep at least one: `*` on the organization
    means every organization-level action. Unknown patterns raise `UnknownActionError`;
    an empty list raises `CatalogueError`.
    """
    level = _scope_level(scope)
    result: set[str] = set()
    patterns = tuple(patterns)
    if not patterns:
        raise CatalogueError("A rule needs at least one action.")
    for pattern in patterns:
        expanded = expand_pattern(pattern, deny=deny)
        fitting = frozenset(name for name in expanded if ACTIONS[name].level == level)
        if fitting == expanded or (fitting and "*" in pattern):
            result |= fitting
            continue
        other = "organization-level" if level == PROJECT else "project-level"
        if pattern in ACTIONS:
            article = "an" if level == PROJECT else "a"
            message = f'"{pattern}" is {article} {other} action'
        elif pattern in PERMISSION_SETS:
            message = f'The permission set "{pattern}" holds {other} actions'
        else:
            message = f'"{pattern}" matches only {other} actions'
        raise ActionScopeError(f"{message}; it cannot be granted on {_scope_words(level)}.")
    return frozenset(result)


def validate_rule_actions(patterns: Iterable[str], scope: str) -> None:
    """Raise `UnknownActionError` or `ActionScopeError` unless the patterns fit `scope`."""
    expand_rule_actions(patterns, scope)


def actions_for_service(key: str) -> tuple[Action, ...]:
    """The service's actions in declaration order; `CatalogueError` for an unknown service."""
    if key not in SERVICES:
        raise CatalogueError(f'Unknown service "{key}".')
    return tuple(action for action in ACTIONS.values() if action.service == key)


def is_valid_action(name: str) -> bool:
    """True when `name` is exactly a catalogue action (not a pattern)."""
    return name in ACTIONS


def permission_set_actions(name: str) -> frozenset[str]:
    """The expanded actions of a permission set; `UnknownActionError` if there is none."""
    try:
        return _SET_ACTIONS[name]
    except KeyError:
        raise UnknownActionError(f'Unknown permission set "{name}".') from None


def permission_set_level(name: str) -> Level:
    """The one level shared by every action of the permission set."""
    return next(iter(_levels(permission_set_actions(name))))


def _check_managed_policies(declared: Iterable[ManagedPolicy]) -> dict[str, ManagedPolicy]:
    policies: dict[str, ManagedPolicy] = {}
    for policy in declared:
        if policy.name in policies:
            raise CatalogueError(f'Duplicate managed policy "{policy.name}".')
        if not policy.rules:
            raise CatalogueError(f'Managed policy "{policy.name}" has no rule.')
        for index, rule in enumerate(policy.rules, start=1):
            if rule.effect not in ("allow", "deny") or rule.scope not in (
                "organization",
                "all_projects",
            ):
                raise CatalogueError(f'Managed policy "{policy.name}" rule {index} is malformed.')
            try:
                validate_rule_actions(rule.actions, rule.scope)
            except CatalogueError as error:
                raise CatalogueError(
                    f'Managed policy "{policy.name}" rule {index}: {error}'
                ) from error
        policies[policy.name] = policy
    return policies


MANAGED_POLICIES: Mapping[str, ManagedPolicy] = MappingProxyType(
    _check_managed_policies(_MANAGED_POLICIES)
)
