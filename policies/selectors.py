"""Reads of policies: gathering and compiling a principal's rules."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.http import Http404

from organizations.models import Application, Group, Membership, Organization
from organizations.selectors.organizations import members_of
from policies.evaluator import CompiledRule, CompiledRuleSet, compile_rule
from policies.models import Policy, PolicyAttachment, Rule


def compile_rules_for(principal: Membership | Application) -> CompiledRuleSet:
    """Every rule that applies to a membership or an application: the policies attached to
    it, to its groups, and the organization's guardrail. Two queries whatever the size of
    the organization: the attachments, then the rules with their policy and projects.

    Stored rules compile leniently (`strict=False`): a rule made invalid by a catalogue
    change degrades towards denial instead of breaking every page of the organization.
    """
    field = "membership" if isinstance(principal, Membership) else "application"
    related = "members" if field == "membership" else "applications"
    group_ids = Group.objects.filter(**{related: principal}).values("pk")
    attachments = (
        PolicyAttachment.objects.filter(Q(**{field: principal}) | Q(group__in=group_ids))
        .order_by()
        .values_list("policy_id", "group__name")
    )
    direct: set[object] = set()
    through: dict[object, list[str]] = {}
    for policy_id, group_name in attachments:
        if group_name is None:
            direct.add(policy_id)
        else:
            through.setdefault(policy_id, []).append(group_name)
    # A scalar subquery, so that PostgreSQL still finds the rules through their index.
    guardrail = Policy.objects.filter(
        kind=Policy.Kind.GUARDRAIL, organization_id=principal.organization_id
    ).values("pk")[:1]
    wanted = Q(policy_id__in=direct | through.keys()) | Q(policy_id=Subquery(guardrail))
    return CompiledRuleSet(_compile_rows(wanted, direct=direct, through=through))


def compile_policy_rules(policy_ids: Iterable[object]) -> list[CompiledRule]:
    """The rules of these policies, compiled as a principal would hold them directly (one
    query): what attaching them adds, or detaching them takes away."""
    ids = set(policy_ids)
    if not ids:
        return []
    return _compile_rows(Q(policy_id__in=ids), direct=ids, through={})


def compile_stored_rule(rule: Rule) -> list[CompiledRule]:
    """One stored rule, compiled as its policy's holder sees it (what editing or removing
    it takes away)."""
    return _compile_rows(Q(pk=rule.pk), direct={rule.policy_id}, through={})


def _compile_rows(
    wanted: Q, *, direct: set[object], through: dict[object, list[str]]
) -> list[CompiledRule]:
    # Plain rows, one per (rule, project), rather than model instances with prefetched
    # projects: a related manager per rule cost most of a cold compile (about 4x). Sorted
    # here rather than in SQL.
    rows = (
        Rule.objects.filter(wanted)
        .order_by()
        .values_list(
            "policy__name",
            "policy_id",
            "position",
            "pk",
            "policy__kind",
            "effect",
            "actions",
            "scope",
            "condition",
            "projects",
        )
    )
    rules: dict[object, tuple[tuple[object, ...], list[str]]] = {}
    for *row, project_id in rows:
        _, projects = rules.setdefault(row[3], (tuple(row), []))
        if project_id is not None:
            projects.append(str(project_id))
    compiled: list[CompiledRule] = []
    index, previous = 0, None
    for row, projects in sorted(rules.values(), key=lambda rule: rule[0][:3]):
        name, policy_id, _position, _pk, kind, effect, actions, scope, condition = row
        index = index + 1 if policy_id == previous else 1
        previous = policy_id
        is_guardrail = kind == Policy.Kind.GUARDRAIL
        compiled.append(
            compile_rule(
                policy_id=str(policy_id),
                policy_name=name,
                rule_index=index,
                effect=effect,
                actions=actions,
                scope=scope,
                project_ids=projects,
                condition=condition,
                is_guardrail=is_guardrail,
                groups=sorted(through.get(policy_id, ())),
                direct=is_guardrail or policy_id in direct,
                strict=False,
            )
        )
    return compiled


# Policies are found through the organization (or are managed): another organization's
# policy is 404, never 403.


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
    if policy is None:
        return []
    return list(policy.rules.order_by("position").prefetch_related("projects"))


def attachments_of(policy: Policy, organization: Organization) -> list[PolicyAttachment]:
    """The policy's attachments in the organization: users, then groups, then applications,
    each by name (one query)."""
    attachments = PolicyAttachment.objects.filter(
        policy=policy, organization=organization
    ).select_related("membership__user", "group", "application")

    def order(attachment: PolicyAttachment) -> tuple[int, str]:
        if attachment.membership_id:
            return 0, attachment.membership.user.email.lower()
        if attachment.group_id:
            return 1, attachment.group.name.lower()
        return 2, attachment.application.name.lower()

    return sorted(attachments, key=order)


def attachable_members(policy: Policy, organization: Organization) -> QuerySet[Membership]:
    return members_of(organization).exclude(policy_attachments__policy=policy)


def attachable_groups(policy: Policy, organization: Organization) -> QuerySet[Group]:
    return (
        Group.objects.filter(organization=organization)
        .exclude(policy_attachments__policy=policy)
        .order_by(Lower("name"))
    )


def attachable_applications(policy: Policy, organization: Organization) -> QuerySet[Application]:
    return (
        Application.objects.filter(organization=organization)
        .exclude(policy_attachments__policy=policy)
        .order_by(Lower("name"))
    )


# ------------------------------------------------- a principal's attached policies


def policies_attached_to(principal: Membership | Group | Application) -> list[PolicyAttachment]:
    """The policies attached directly to a user (membership), group or application."""
    field = PolicyAttachment.principal_field(principal)
    return list(
        PolicyAttachment.objects.filter(**{field: principal})
        .select_related("policy")
        .order_by(Lower("policy__name"))
    )


def policies_through_groups(principal: Membership | Application) -> list[PolicyAttachment]:
    """The attachments to the groups of a user or application: what it inherits."""
    related = "members" if isinstance(principal, Membership) else "applications"
    groups = Group.objects.filter(**{related: principal}).values("pk")
    return list(
        PolicyAttachment.objects.filter(group__in=groups)
        .select_related("policy", "group")
        .order_by(Lower("policy__name"), Lower("group__name"))
    )


def attachable_policies(principal: Membership | Group | Application) -> QuerySet[Policy]:
    """Custom and managed policies not attached to the principal yet (never the guardrail)."""
    field = PolicyAttachment.principal_field(principal)
    attached = PolicyAttachment.objects.filter(**{field: principal}).values("policy_id")
    return (
        visible_policies(principal.organization)
        .exclude(kind=Policy.Kind.GUARDRAIL)
        .exclude(pk__in=attached)
        .order_by("kind", Lower("name"))
    )
