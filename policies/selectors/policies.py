"""Reads of policies. Policies are found through the organization (or are managed): another
organization's policy is 404, never 403."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import (
    Count,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, Lower
from django.http import Http404

from organizations.models import Organization, Resource
from organizations.selectors.resources import searched
from policies.models import Policy, PolicyAttachment, Rule


def visible_policies(organization: Organization) -> QuerySet[Policy]:
    return Policy.objects.filter(
        Q(organization=organization) | Q(kind=Policy.Kind.MANAGED, organization__isnull=True)
    )


def policy_for(*, organization: Organization, policy_id: object) -> Policy:
    try:
        return visible_policies(organization).get(pk=policy_id)
    except (Policy.DoesNotExist, ValueError):
        raise Http404("No such policy.") from None


def rule_for(*, policy: Policy, rule_id: object) -> Rule:
    try:
        return policy.rules.select_related("policy__organization").get(pk=rule_id)
    except (Rule.DoesNotExist, ValueError):
        raise Http404("No such rule.") from None


def guardrail_of(organization: Organization) -> Policy | None:
    return Policy.objects.filter(organization=organization, kind=Policy.Kind.GUARDRAIL).first()


def policies_with_counts(organization: Organization) -> QuerySet[Policy]:
    """Custom and managed policies with their rule count and the organization's
    attachment count, in a constant number of queries."""
    rules = Rule.objects.filter(policy=OuterRef("pk")).values("policy").annotate(n=Count("pk"))
    attachments = (
        PolicyAttachment.objects.filter(policy=OuterRef("pk"), organization=organization)
        .values("policy")
        .annotate(n=Count("pk"))
    )
    return (
        visible_policies(organization)
        .exclude(kind=Policy.Kind.GUARDRAIL)
        .annotate(
            rule_count=Coalesce(Subquery(rules.values("n")), 0),
            attachment_count=Coalesce(Subquery(attachments.values("n")), 0),
        )
        .order_by("kind", Lower("name"))
    )


def ordered_rules(policy: Policy | None) -> list[Rule]:
    """The policy's rules in order, each with the places its scope chooses. A rule holds
    projects or resources only under the scope that chooses them (services.rules), so
    each relation is read for those rules alone: none at all when no rule chooses any.
    Readers look at a rule's projects or resources only under its scope."""
    if policy is None:
        return []
    rules = list(policy.rules.order_by("position"))
    prefetch_related_objects([r for r in rules if r.scope == Rule.Scope.PROJECTS], "projects")
    prefetch_related_objects(
        [r for r in rules if r.scope == Rule.Scope.RESOURCES],
        Prefetch("resources", Resource.objects.select_related("project")),
    )
    return rules


def chosen_resources(organization: Organization, ids: Iterable[str]) -> list[Resource]:
    """The organization's resources among `ids` (ill-formed and foreign ones left out)."""
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not valid:
        return []
    resources = Resource.objects.filter(organization=organization, pk__in=valid)
    return list(resources.select_related("project").order_by("type", "name", "pk"))


# The rule editor's resource picker shows at most this many matches per search.
PICKER_MATCHES = 20


def resource_matches(
    organization: Organization,
    search: str,
    *,
    types: Iterable[str] = (),
    exclude: Iterable[object] = (),
) -> tuple[list[Resource], bool]:
    """Up to `PICKER_MATCHES` of the organization's resources matching `search` (a name
    part, ignoring case; a tag `key` or `key=value`), of `types` when given, leaving out
    `exclude`; and whether more match. Nothing without a search: never the whole list."""
    search = search.strip()
    if not search or "\x00" in search:  # PostgreSQL refuses NUL in a query
        return [], False
    resources = Resource.objects.filter(organization=organization)
    types = list(types)
    if types:
        resources = resources.filter(type__in=types)
    excluded = list(exclude)
    if excluded:
        resources = resources.exclude(pk__in=excluded)
    found = list(
        searched(resources, search)
        .select_related("project")
        .order_by("name", "pk")[: PICKER_MATCHES + 1]
    )
    return found[:PICKER_MATCHES], len(found) > PICKER_MATCHES
