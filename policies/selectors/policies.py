"""Reads of policies. Policies are found through the organization (or are managed): another
organization's policy is 404, never 403."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.http import Http404

from organizations.models import Organization
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
    if policy is None:
        return []
    return list(policy.rules.order_by("position").prefetch_related("projects"))
