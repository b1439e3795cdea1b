"""Shrink to used (#16): save a narrowed policy (policies.selectors.shrink) and put it in
place of a principal's direct custom policies, in one transaction, through the services
that make each part (create, add rules, attach, detach): each keeps its own audit event,
version bump and delegation ceiling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from policies.models import Policy
from policies.selectors.shrink import ShrinkPlan
from policies.services.attachments import policy_attach, policy_detach, principal_words
from policies.services.policies import policy_create
from policies.services.rules import rule_add


@transaction.atomic
def principal_shrink_to_used(
    *,
    plan: ShrinkPlan,
    name: str,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> Policy:
    """Create policy `name` holding `plan`'s rules, attach it to the plan's principal and
    detach the custom policies it replaces; returns the new policy. The attach's audit
    event carries the access diff its author previewed and confirmed (`preview`). A plan
    with nothing used is refused: it would only take access away."""
    if not plan.proposes:
        raise ValidationError(f"Nothing was used in the last {plan.days} days: no policy to make.")
    subject = plan.subject
    policy = policy_create(
        organization=subject.organization,
        name=name,
        description=f"What {principal_words(subject)} used in the {plan.days} days before.",
        actor=actor,
        request=request,
    )
    for rule in plan.rules:
        # Attached to nobody yet: the ceiling is checked once, by the attach, on them all.
        rule_add(
            policy=policy,
            effect=rule.effect,
            actions=rule.actions,
            scope=rule.scope,
            projects=rule.projects,
            resources=rule.resources,
            condition=rule.condition,
            actor=actor,
            request=request,
        )
    policy_attach(policy=policy, principal=subject, actor=actor, request=request, preview=preview)
    for replaced in plan.replaced:
        policy_detach(policy=replaced, principal=subject, actor=actor, request=request)
    return policy
