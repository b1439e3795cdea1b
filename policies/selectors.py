"""Reads of policies: gathering and compiling a principal's rules."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.http import Http404

from organizations.models import Application, Group, Membership, Organization
from organizations.selectors import members_of
from policies.evaluator import CompiledRule, CompiledRuleSet, compile_rule
from policies.models import Policy, PolicyAttachment, Rule


def _rules_prefetch() -> Prefetch:
    return Prefetch(
        "rules", queryset=Rule.objects.order_by("position").prefetch_related("projects")
    )


def compile_rules_for(principal: Membership | Application) -> CompiledRuleSet:
    """Every rule that applies to a membership or an application: the policies attached to
    it, to its groups, and the organization's guardrail. Four queries whatever the size.

    Stored rules compile leniently (`strict=False`): a rule made invalid by a catalogue
    change degrades towards denial instead of breaking every page of the organization.
    """
    field = "membership" if isinstance(principal, Membership) else "application"
    related = "members" if field == "membership" else "applications"
    group_ids = Group.objects.filter(**{related: principal})
    attachments = PolicyAttachment.objects.filter(
        Q(**{field: principal}) | Q(group__in=group_ids.values("pk"))
    ).values_list("policy_id", "group__name")
    direct: set[object] = set()
    through: dict[object, list[str]] = {}
    for policy_id, group_name in attachments:
        if group_name is None:
            direct.add(policy_id)
        else:
            through.setdefault(policy_id, []).append(group_name)
    policies = Policy.objects.filter(
        Q(pk__in=direct | through.keys())
        | Q(kind=Policy.Kind.GUARDRAIL, organization_id=principal.organization_id)
    ).prefetch_related(_rules_prefetch())
    compiled: list[CompiledRule] = []
    for policy in policies:
        is_guardrail = policy.kind == Policy.Kind.GUARDRAIL
        for index, rule in enumerate(policy.rules.all(), start=1):
            compiled.append(
                compile_rule(
                    policy_id=str(policy.pk),
                    policy_name=policy.name,
                    rule_index=index,
                    effect=rule.effect,
                    actions=rule.actions,
                    scope=rule.scope,
                    project_ids=[str(p.pk) for p in rule.projects.all()],
                    condition=rule.condition,
                    is_guardrail=is_guardrail,
                    groups=sorted(through.get(policy.pk, ())),
                    direct=is_guardrail or policy.pk in direct,
                    strict=False,
                )
            )
    return CompiledRuleSet(compiled)


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
    return list(
        PolicyAttachment.objects.filter(policy=policy, organization=organization)
        .select_related("membership__user")
        .order_by("membership__user__email")
    )


def attachable_members(policy: Policy, organization: Organization) -> QuerySet[Membership]:
    return members_of(organization).exclude(policy_attachments__policy=policy)
