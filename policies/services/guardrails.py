"""Writes to the organization's guardrails: deny rules binding everyone but owners."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from organizations.models import Organization, Project, Resource
from policies.models import Policy, Rule
from policies.services.rules import rule_add

GUARDRAIL_NAME = "Organization guardrails"


@transaction.atomic
def guardrail_rule_add(
    *,
    organization: Organization,
    effect: str,
    actions: Sequence[str],
    scope: str,
    projects: Sequence[Project] = (),
    resources: Sequence[Resource] = (),
    condition: str = "",
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> Rule:
    """Add a deny rule to the organization's guardrails, creating the guardrail policy on
    its first rule (in the same transaction: a refused rule leaves nothing behind). Its
    audit event carries the access diff its author previewed and confirmed, if any."""
    policy, _ = Policy.objects.get_or_create(
        organization=organization,
        kind=Policy.Kind.GUARDRAIL,
        defaults={
            "name": GUARDRAIL_NAME,
            "description": "Deny rules applied to everyone in the organization but owners.",
        },
    )
    return rule_add(
        policy=policy,
        effect=effect,
        actions=actions,
        scope=scope,
        projects=projects,
        resources=resources,
        condition=condition,
        actor=actor,
        request=request,
        preview=preview,
    )
