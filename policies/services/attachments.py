"""Writes to attachments: a policy attached to, or detached from, a user, group or application."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import record
from organizations.models import Application, Group, Membership
from organizations.services.organizations import organization_bump_authz_version
from policies.delegation import require_within_rights
from policies.models import Policy, PolicyAttachment
from policies.selectors.rules import compile_policy_rules

Principal = Membership | Group | Application


def principal_kind(principal: Principal) -> str:
    """The kind named in URLs and audit data: user, group or application."""
    if isinstance(principal, Membership):
        return "user"
    if isinstance(principal, Group):
        return "group"
    return "application"


def principal_words(principal: Principal) -> str:
    """Who an attachment reaches, for refusals: "ana@example.com", "group Finance"."""
    if isinstance(principal, Membership):
        return principal.user.email
    return f"{principal_kind(principal)} {principal.name}"


def _record_attachment(
    *,
    event: events.EventType,
    policy: Policy,
    principal: Principal,
    actor: User,
    request: HttpRequest | None,
    preview: Mapping[str, Any] | None = None,
) -> None:
    """Bump the version (the principal's permissions changed) and record `event`, with
    the access diff its author previewed and confirmed (policies.preview), if any."""
    organization = principal.organization
    # Users are named by their account id, the id the evaluator and the API see.
    principal_id = principal.user_id if isinstance(principal, Membership) else principal.pk
    organization_bump_authz_version(organization=organization)
    record(
        action=event,
        organization=organization,
        actor=actor,
        target=policy,
        data={
            "principal": {"type": principal_kind(principal), "id": str(principal_id)},
            **({"preview": dict(preview)} if preview else {}),
        },
        request=request,
    )


@transaction.atomic
def policy_attach(
    *,
    policy: Policy,
    principal: Principal,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> bool:
    """Attach `policy` to a user (membership), group or application (idempotent); True
    when it was not attached yet.

    Only the organization's custom policies and managed policies attach; guardrails apply
    to everyone already and are never attached.
    """
    organization = principal.organization
    if policy.organization_id not in (None, organization.pk) or policy.kind == "guardrail":
        raise ValidationError("This policy cannot be attached in this organization.")
    field = PolicyAttachment.principal_field(principal)
    if not PolicyAttachment.objects.filter(policy=policy, **{field: principal}).exists():
        require_within_rights(
            organization=organization,
            actor=actor,
            request=request,
            after=compile_policy_rules([policy.pk]),
            principals=principal_words(principal),
        )
    _, created = PolicyAttachment.objects.get_or_create(
        policy=policy,
        **{field: principal},
        defaults={"organization": organization},
    )
    if created:
        _record_attachment(
            event=events.POLICY_ATTACHED,
            policy=policy,
            principal=principal,
            actor=actor,
            request=request,
            preview=preview,
        )
    return created


@transaction.atomic
def policy_detach(
    *,
    policy: Policy,
    principal: Principal,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> bool:
    """Detach `policy` from a user, group or application (idempotent); True when it was
    attached. The principal (and a group's members) lose what it granted at once, and
    what its deny rules kept from them comes back: the author must hold that."""
    attached = PolicyAttachment.objects.filter(
        policy=policy, **{PolicyAttachment.principal_field(principal): principal}
    )
    if attached.exists():
        require_within_rights(
            organization=principal.organization,
            actor=actor,
            request=request,
            before=compile_policy_rules([policy.pk]),
            principals=principal_words(principal),
        )
    deleted, _ = attached.delete()
    if deleted:
        _record_attachment(
            event=events.POLICY_DETACHED,
            policy=policy,
            principal=principal,
            actor=actor,
            request=request,
            preview=preview,
        )
    return bool(deleted)
