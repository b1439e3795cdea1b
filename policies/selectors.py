"""Reads of policies: gathering and compiling a principal's rules."""

from __future__ import annotations

from django.db.models import Prefetch, Q

from organizations.models import Membership
from policies.evaluator import CompiledRule, CompiledRuleSet, compile_rule
from policies.models import Policy, Rule


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
