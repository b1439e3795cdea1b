"""Reads of the IAM tools, shared by the console's pages and the API: the rules the
simulator and the effective-permissions listing judge a principal by, and the resource a
question may be about."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

from organizations.models import Application, Membership, Organization, Project, Resource
from policies.authz import remembered
from policies.catalogue import RESOURCE_TYPE_OF, RESOURCE_TYPES
from policies.evaluator import CompiledRule, CompiledRuleSet, Principal, ResourceScope
from policies.selectors.rules import compile_policies, composed, policy_paths_for


def rules_of(
    subject: Membership | Application,
    principal: Principal,
    organization: Organization | None = None,
) -> CompiledRuleSet:
    """The compiled rules of a membership or application (none for owners and inactive
    principals: the evaluator decides them before any rule is read).

    The policies it holds are read afresh (one query): attaching or detaching one shows
    at once. Their rules compiled are remembered until the organization's authorization
    version moves, as for every real request (policies.authz.rules_for): compiling a
    principal of 25 policies costs more than the rest of a tool's page. `organization`:
    the subject's, when already read (its version is then the request's).
    """
    if principal.is_owner or not principal.is_active:
        return CompiledRuleSet.empty()
    organization = organization or subject.organization
    paths = policy_paths_for(subject)
    signature = hashlib.blake2b(
        repr(sorted((str(policy), path) for policy, path in paths.items())).encode(),
        digest_size=16,
    ).hexdigest()
    return remembered(
        organization,
        f"tool-rules:{signature}",
        lambda: composed(compile_policies(organization.pk, paths, guardrail=True).values()),
    )


def resource_in(organization: Organization, resource_id: object) -> Resource | None:
    """The organization's resource `resource_id` with its project (None: no such resource
    here, or not an id), in one query."""
    try:
        pk = uuid.UUID(str(resource_id))
    except ValueError:
        return None
    resources = Resource.objects.select_related("project").filter(organization=organization)
    return resources.filter(pk=pk).first()


def project_names(organization: Organization, rules: Iterable[CompiledRule]) -> dict[str, str]:
    """Names of the projects chosen-projects rules name, by id (one query, none when no
    rule names a project), so their scopes read in words: bounded by the rules shown,
    never every project of the organization."""
    ids = {pid for rule in rules if isinstance(rule.scope, frozenset) for pid in rule.scope}
    if not ids:
        return {}
    found = Project.objects.filter(organization=organization, pk__in=ids)
    return {str(pk): name for pk, name in found.values_list("pk", "name")}


def resource_names(organization: Organization, rules: Iterable[CompiledRule]) -> dict[str, str]:
    """Names of the resources chosen-resources rules name, by id (one query, none when
    no rule names a resource), so their scopes read "instance web-1"."""
    ids = {
        rid for rule in rules if isinstance(rule.scope, ResourceScope) for rid in rule.scope.by_id
    }
    if not ids:
        return {}
    found = Resource.objects.filter(organization=organization, pk__in=ids)
    return {str(pk): name for pk, name in found.values_list("pk", "name")}


def wrong_action_for(action: str, type_key: str) -> str | None:
    """Why `action` cannot be asked about a resource of type `type_key`, or None when it
    is one of that type's actions (the console's and the API's one message)."""
    kind = RESOURCE_TYPES.get(type_key)
    if kind is None:
        return f'"{type_key}" is not a resource type.'
    if RESOURCE_TYPE_OF.get(action) == type_key:
        return None
    return (
        f"{action} is not an action on {kind.plural.lower()}: "
        f"choose one of {', '.join(kind.actions)}."
    )
