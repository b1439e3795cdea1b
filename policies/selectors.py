"""Reads of policies: gathering and compiling a principal's rules."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.http import Http404

from organizations.models import Membership, Organization
from organizations.selectors import members_of
from policies.evaluator import CompiledRule, CompiledRuleSet, compile_rule
from policies.models import Policy, PolicyAttachment, Rule


def _rules_prefetch() -> Prefetch:
    return Prefetch(
        "rules", queryset=Rule.objects.order_by("position").prefetch_related("projects")
    )


def compile_rules_for(membership: Membership) -> CompiledRuleSet:
    """Every rule that applies to the membership: its attached policies and the guardrails.

    Stored rules compile leniently (`strict=False`): a rule made invalid by a catalogue
    change degrades towards denial instead of breaking every page of the organization.
    """
    policies = (
        Policy.objects.filter(
            Q(attachments__membership=membership)
            | Q(kind=Policy.Kind.GUARDRAIL, organization_id=membership.organization_id)
        )
        .distinct()
        .prefetch_related(_rules_prefetch())
    )
    compiled: list[CompiledRule] = []
    for policy in policies:
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
                    is_guardrail=policy.kind == Policy.Kind.GUARDRAIL,
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
