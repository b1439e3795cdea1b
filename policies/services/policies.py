"""Writes to policies: the managed ones kept in step with the catalogue, and an organization's
own: create, update, duplicate, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from iamportal.names import unique_name
from iamportal.text import unsafe_characters
from organizations.models import Organization
from organizations.services.organizations import organization_bump_authz_version
from policies import catalogue
from policies.models import Policy, Rule
from policies.selectors.rules import compile_policy_rules
from policies.services.guardrails import GUARDRAIL_NAME
from policies.services.rules import (
    locked_policy,
    require_rule_change_within_rights,
    rule_data,
)
from policies.services.versions import policy_version_record


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


MAX_LABELS = 20


MAX_LABEL_LENGTH = 50


def _clean_name(*, organization: Organization, name: str, exclude: Policy | None) -> str:
    # Managed policies and the guardrails share the organization's namespace of policies.
    return unique_name(
        name,
        taken=Policy.objects.filter(Q(organization=organization) | Q(kind=Policy.Kind.MANAGED)),
        exclude=exclude,
        what="a policy",
        max_length=Policy._meta.get_field("name").max_length,
        reserved=(GUARDRAIL_NAME,),
    )


def _clean_labels(labels: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for label in labels:
        label = label.strip()
        if not label or label in cleaned:
            continue
        if len(label) > MAX_LABEL_LENGTH:
            raise ValidationError({"labels": f"A label is at most {MAX_LABEL_LENGTH} characters."})
        if unsafe := unsafe_characters(label):
            codes = ", ".join(f"U+{ord(char):04X}" for char in unsafe)
            raise ValidationError(
                {"labels": f"Use labels without control or invisible characters (found {codes})."}
            )
        cleaned.append(label)
    if len(cleaned) > MAX_LABELS:
        raise ValidationError({"labels": f"A policy has at most {MAX_LABELS} labels."})
    return cleaned


def _policy_data(policy: Policy) -> dict[str, Any]:
    return {"name": policy.name, "description": policy.description, "labels": policy.labels}


@transaction.atomic
def policy_create(
    *,
    organization: Organization,
    name: str,
    description: str = "",
    labels: Sequence[str] = (),
    actor: User,
    request: HttpRequest | None = None,
) -> Policy:
    """Create an empty custom policy; names are unique per organization, ignoring case,
    and may not shadow a managed policy."""
    policy = Policy.objects.create(
        organization=organization,
        kind=Policy.Kind.CUSTOM,
        name=_clean_name(organization=organization, name=name, exclude=None),
        description=description.strip(),
        labels=_clean_labels(labels),
    )
    policy_version_record(policy, actor, "created", request=request)
    record(
        action=events.POLICY_CREATED,
        organization=organization,
        actor=actor,
        target=policy,
        data={"after": _policy_data(policy)},
        request=request,
    )
    return policy


@transaction.atomic
def policy_update(
    *,
    policy: Policy,
    name: str,
    description: str,
    labels: Sequence[str],
    actor: User,
    request: HttpRequest | None = None,
) -> Policy:
    """Rename a custom policy and change its description and labels."""
    policy = locked_policy(policy)
    if policy.kind == Policy.Kind.GUARDRAIL:
        raise ValidationError("The guardrail policy has no name or labels to change.")
    before = _policy_data(policy)
    policy.name = _clean_name(organization=policy.organization, name=name, exclude=policy)
    policy.description = description.strip()
    policy.labels = _clean_labels(labels)
    policy.save(update_fields=["name", "description", "labels", "updated_at"])
    after = _policy_data(policy)
    if before != after:
        # Names appear in decisions' explanations, which are cached with the rules.
        organization_bump_authz_version(organization=policy.organization)
        policy_version_record(policy, actor, "details edited", request=request)
        record(
            action=events.POLICY_UPDATED,
            organization=policy.organization,
            actor=actor,
            target=policy,
            data=diff(before, after),
            request=request,
        )
    return policy


def _copy_name(organization: Organization, name: str) -> str:
    base = f"Copy of {name}"[:120]
    taken = {
        n.lower()
        for n in Policy.objects.filter(
            Q(organization=organization) | Q(kind=Policy.Kind.MANAGED),
            name__istartswith=base,
        ).values_list("name", flat=True)
    }
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{base} ({number})"
    return candidate


@transaction.atomic
def policy_duplicate(
    *,
    policy: Policy,
    organization: Organization,
    actor: User,
    request: HttpRequest | None = None,
) -> Policy:
    """Copy a custom or managed policy, with its rules, into the organization as
    "Copy of <name>" (numbered when taken). The copy is attached to nobody."""
    if policy.kind == Policy.Kind.GUARDRAIL or policy.organization_id not in (
        None,
        organization.pk,
    ):
        raise ValidationError("This policy cannot be duplicated here.")
    copy = Policy.objects.create(
        organization=organization,
        kind=Policy.Kind.CUSTOM,
        name=_copy_name(organization, policy.name),
        description=policy.description,
        labels=list(policy.labels),
    )
    for rule in policy.rules.order_by("position").prefetch_related("projects", "resources"):
        duplicate = Rule.objects.create(
            policy=copy,
            position=rule.position,
            effect=rule.effect,
            actions=list(rule.actions),
            scope=rule.scope,
            condition=rule.condition,
        )
        duplicate.projects.set(rule.projects.all())
        duplicate.resources.set(rule.resources.all())
    policy_version_record(copy, actor, f"duplicated from {policy.name}", request=request)
    record(
        action=events.POLICY_DUPLICATED,
        organization=organization,
        actor=actor,
        target=copy,
        data={"source": {"id": str(policy.pk), "name": policy.name}, "after": _policy_data(copy)},
        request=request,
    )
    return copy


@transaction.atomic
def policy_delete(
    *,
    policy: Policy,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> None:
    """Delete a custom policy with its rules and attachments; its audit event carries the
    access diff its author previewed and confirmed (policies.preview), if any."""
    policy = locked_policy(policy)
    if policy.kind == Policy.Kind.GUARDRAIL:
        raise ValidationError("Remove the guardrail's rules instead of deleting it.")
    organization = policy.organization
    require_rule_change_within_rights(
        policy, actor=actor, request=request, before=compile_policy_rules([policy.pk])
    )
    record(
        action=events.POLICY_DELETED,
        organization=organization,
        actor=actor,
        target=policy,
        data={
            "before": {
                **_policy_data(policy),
                "rules": [rule_data(rule) for rule in policy.rules.order_by("position")],
                "attached_to": [
                    str(user_id)
                    for user_id in policy.attachments.filter(membership__isnull=False).values_list(
                        "membership__user_id", flat=True
                    )
                ],
                "attached_to_groups": [
                    str(pk) for pk in policy.attachments.values_list("group_id", flat=True) if pk
                ],
                "attached_to_applications": [
                    str(pk)
                    for pk in policy.attachments.values_list("application_id", flat=True)
                    if pk
                ],
            },
            **({"preview": dict(preview)} if preview else {}),
        },
        request=request,
    )
    policy.delete()
    organization_bump_authz_version(organization=organization)
