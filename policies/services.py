"""Writes to policies and attachments: invariants, audit events and version bumps."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import record
from organizations.models import Membership
from organizations.services import organization_bump_authz_version
from policies import catalogue
from policies.models import Policy, Rule


@transaction.atomic
def sync_managed_policies() -> None:
    """Make the managed policies in the database match the catalogue in code.

    Runs after every migrate; managed policies are read-only everywhere else.
    """
    for spec in catalogue.MANAGED_POLICIES.values():
        policy, _ = Policy.objects.update_or_create(
            kind=Policy.Kind.MANAGED,
            organization=None,
            name=spec.name,
            defaults={"description": spec.description},
        )
        wanted = [(r.effect, list(r.actions), r.scope) for r in spec.rules]
        current = [(r.effect, r.actions, r.scope) for r in policy.rules.order_by("position")]
        if wanted != current:
            policy.rules.all().delete()
            Rule.objects.bulk_create(
                Rule(policy=policy, position=i, effect=effect, actions=actions, scope=scope)
                for i, (effect, actions, scope) in enumerate(wanted, start=1)
            )
    Policy.objects.filter(kind=Policy.Kind.MANAGED).exclude(
        name__in=list(catalogue.MANAGED_POLICIES)
    ).delete()


@transaction.atomic
def policy_attach(
    *, policy: Policy, membership: Membership, actor: User, request: HttpRequest | None = None
) -> None:
    """Attach `policy` to a user of the organization (idempotent)."""
    organization = membership.organization
    if policy.organization_id not in (None, organization.pk) or policy.kind == "guardrail":
        raise ValueError("This policy cannot be attached in this organization.")
    _, created = membership.policy_attachments.get_or_create(
        policy=policy, defaults={"organization": organization}
    )
    if created:
        organization_bump_authz_version(organization=organization)
        record(
            action=events.POLICY_ATTACHED,
            organization=organization,
            actor=actor,
            target=policy,
            data={"principal": {"type": "user", "id": str(membership.user_id)}},
            request=request,
        )
