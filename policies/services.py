"""Writes to policies and attachments: invariants, audit events and version bumps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Q
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from organizations.models import Application, Group, Membership, Organization, Project
from organizations.services.organizations import organization_bump_authz_version
from policies import catalogue
from policies.conditions import ConditionError
from policies.delegation import require_guardrail_editor, require_within_rights
from policies.evaluator import CompiledRule, RuleError, compile_rule
from policies.models import Policy, PolicyAttachment, Rule
from policies.selectors import compile_policy_rules, compile_stored_rule

GUARDRAIL_NAME = "Organization guardrails"


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
) -> None:
    """Bump the version (the principal's permissions changed) and record `event`."""
    organization = principal.organization
    # Users are named by their account id, the id the evaluator and the API see.
    principal_id = principal.user_id if isinstance(principal, Membership) else principal.pk
    organization_bump_authz_version(organization=organization)
    record(
        action=event,
        organization=organization,
        actor=actor,
        target=policy,
        data={"principal": {"type": principal_kind(principal), "id": str(principal_id)}},
        request=request,
    )


@transaction.atomic
def policy_attach(
    *,
    policy: Policy,
    principal: Principal,
    actor: User,
    request: HttpRequest | None = None,
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
        )
    return created


@transaction.atomic
def policy_detach(
    *,
    policy: Policy,
    principal: Principal,
    actor: User,
    request: HttpRequest | None = None,
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
        )
    return bool(deleted)


# ------------------------------------------------------------------------ policies

MAX_LABELS = 20
MAX_LABEL_LENGTH = 50
# Renumbering lifts every position above this first: (policy, position) stays unique
# row by row, which SQLite and PostgreSQL check during the update itself.
_POSITION_OFFSET = 1_000_000


def _refuse_read_only(policy: Policy) -> None:
    if policy.is_managed:
        raise ValidationError("Managed policies are read-only: duplicate one to change a copy.")


def _clean_name(*, organization: Organization, name: str, exclude: Policy | None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Enter a policy name."})
    if len(name) > Policy._meta.get_field("name").max_length:
        raise ValidationError({"name": "A policy name is at most 128 characters."})
    clash = Policy.objects.filter(
        Q(organization=organization) | Q(kind=Policy.Kind.MANAGED), name__iexact=name
    )
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists() or name.lower() == GUARDRAIL_NAME.lower():
        raise ValidationError({"name": f'A policy named "{name}" already exists.'})
    return name


def _clean_labels(labels: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for label in labels:
        label = label.strip()
        if not label or label in cleaned:
            continue
        if len(label) > MAX_LABEL_LENGTH:
            raise ValidationError({"labels": f"A label is at most {MAX_LABEL_LENGTH} characters."})
        cleaned.append(label)
    if len(cleaned) > MAX_LABELS:
        raise ValidationError({"labels": f"A policy has at most {MAX_LABELS} labels."})
    return cleaned


def _policy_data(policy: Policy) -> dict[str, Any]:
    return {"name": policy.name, "description": policy.description, "labels": policy.labels}


def _rule_data(rule: Rule) -> dict[str, Any]:
    return {
        "position": rule.position,
        "effect": rule.effect,
        "actions": rule.actions,
        "scope": rule.scope,
        "projects": sorted(str(pk) for pk in rule.projects.values_list("pk", flat=True)),
        "condition": rule.condition,
    }


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
    policy = (
        Policy.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=policy.pk)
    )
    _refuse_read_only(policy)
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
    for rule in policy.rules.order_by("position").prefetch_related("projects"):
        Rule.objects.create(
            policy=copy,
            position=rule.position,
            effect=rule.effect,
            actions=list(rule.actions),
            scope=rule.scope,
            condition=rule.condition,
        ).projects.set(rule.projects.all())
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
def policy_delete(*, policy: Policy, actor: User, request: HttpRequest | None = None) -> None:
    """Delete a custom policy with its rules and attachments."""
    policy = (
        Policy.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=policy.pk)
    )
    _refuse_read_only(policy)
    if policy.kind == Policy.Kind.GUARDRAIL:
        raise ValidationError("Remove the guardrail's rules instead of deleting it.")
    organization = policy.organization
    _require_rule_change_within_rights(
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
                "rules": [_rule_data(rule) for rule in policy.rules.order_by("position")],
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
            }
        },
        request=request,
    )
    policy.delete()
    organization_bump_authz_version(organization=organization)


# --------------------------------------------------------------------------- rules


def _check_rule(
    *,
    policy: Policy,
    effect: str,
    actions: Sequence[str],
    scope: str,
    projects: Sequence[Project],
    condition: str,
) -> tuple[str, CompiledRule]:
    """Refuse a rule the evaluator would not compile strictly; messages name the field.

    Returns the condition as it is stored (stripped) and the rule compiled."""
    condition = condition.strip()
    if any(project.organization_id != policy.organization_id for project in projects):
        raise ValidationError({"projects": "Choose projects of this organization."})
    try:
        compiled = compile_rule(
            policy_id=str(policy.pk),
            policy_name=policy.name,
            rule_index=1,
            effect=effect,
            actions=actions,
            scope=scope,
            project_ids=[str(project.pk) for project in projects],
            condition=condition,
            is_guardrail=policy.kind == Policy.Kind.GUARDRAIL,
            strict=True,
        )
    except ConditionError as error:
        raise ValidationError({"condition": error.message}) from None
    except catalogue.CatalogueError as error:
        raise ValidationError({"actions": str(error)}) from None
    except RuleError as error:
        field = "projects" if scope == Rule.Scope.PROJECTS else "effect"
        raise ValidationError({field: str(error)}) from None
    return condition, compiled


def _lock_policy(policy: Policy, *, actor: User, request: HttpRequest | None) -> Policy:
    """The policy, locked: concurrent rule edits of one policy run one after the other.
    The guardrails change only by their own permission (see `catalogue.GUARDRAIL_EDIT`)."""
    policy = (
        Policy.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=policy.pk)
    )
    _refuse_read_only(policy)
    if policy.kind == Policy.Kind.GUARDRAIL:
        require_guardrail_editor(organization=policy.organization, actor=actor, request=request)
    return policy


def _require_rule_change_within_rights(
    policy: Policy,
    *,
    actor: User,
    request: HttpRequest | None,
    before: Sequence[CompiledRule] = (),
    after: Sequence[CompiledRule] = (),
) -> None:
    """The delegation ceiling for a change of `policy`'s rules: it reaches whoever the
    policy is attached to (everyone but owners for the guardrails), and nobody when it is
    attached to nobody."""
    if policy.kind == Policy.Kind.GUARDRAIL:
        reach = "everyone bound by the guardrails"
    else:
        count = PolicyAttachment.objects.filter(policy=policy).count()
        if not count:
            return
        reach = f"the {count} principal{'s' if count != 1 else ''} policy {policy.name} reaches"
    require_within_rights(
        organization=policy.organization,
        actor=actor,
        request=request,
        before=before,
        after=after,
        principals=reach,
    )


def _record_rule_change(
    *,
    policy: Policy,
    event: events.EventType,
    actor: User,
    request: HttpRequest | None,
    data: dict[str, Any],
) -> None:
    organization_bump_authz_version(organization=policy.organization)
    if policy.kind == Policy.Kind.GUARDRAIL:
        data = {"change": event.name.rsplit(".", 1)[1], **data}
        event = events.GUARDRAIL_UPDATED
    record(
        action=event,
        organization=policy.organization,
        actor=actor,
        target=policy,
        data=data,
        request=request,
    )


@transaction.atomic
def rule_add(
    *,
    policy: Policy,
    effect: str,
    actions: Sequence[str],
    scope: str,
    projects: Sequence[Project] = (),
    condition: str = "",
    actor: User,
    request: HttpRequest | None = None,
) -> Rule:
    """Append a rule to a custom or guardrail policy after compiling it strictly."""
    policy = _lock_policy(policy, actor=actor, request=request)
    condition, compiled = _check_rule(
        policy=policy,
        effect=effect,
        actions=actions,
        scope=scope,
        projects=projects,
        condition=condition,
    )
    _require_rule_change_within_rights(policy, actor=actor, request=request, after=[compiled])
    last = policy.rules.aggregate(last=Max("position"))["last"] or 0
    rule = Rule.objects.create(
        policy=policy,
        position=last + 1,
        effect=effect,
        actions=list(actions),
        scope=scope,
        condition=condition,
    )
    rule.projects.set(projects if scope == Rule.Scope.PROJECTS else [])
    _record_rule_change(
        policy=policy,
        event=events.POLICY_RULE_ADDED,
        actor=actor,
        request=request,
        data={"after": _rule_data(rule)},
    )
    return rule


@transaction.atomic
def rule_update(
    *,
    rule: Rule,
    effect: str,
    actions: Sequence[str],
    scope: str,
    projects: Sequence[Project] = (),
    condition: str = "",
    actor: User,
    request: HttpRequest | None = None,
) -> Rule:
    """Change a rule in place (its position stays) after compiling it strictly."""
    policy = _lock_policy(rule.policy, actor=actor, request=request)
    rule = Rule.objects.get(pk=rule.pk, policy=policy)
    condition, compiled = _check_rule(
        policy=policy,
        effect=effect,
        actions=actions,
        scope=scope,
        projects=projects,
        condition=condition,
    )
    _require_rule_change_within_rights(
        policy, actor=actor, request=request, before=compile_stored_rule(rule), after=[compiled]
    )
    before = _rule_data(rule)
    rule.effect, rule.actions, rule.scope, rule.condition = effect, list(actions), scope, condition
    rule.save(update_fields=["effect", "actions", "scope", "condition"])
    rule.projects.set(projects if scope == Rule.Scope.PROJECTS else [])
    after = _rule_data(rule)
    if before != after:
        _record_rule_change(
            policy=policy,
            event=events.POLICY_RULE_UPDATED,
            actor=actor,
            request=request,
            data=diff(before, after),
        )
    return rule


def _renumber(policy: Policy, ordered: Sequence[Rule]) -> None:
    """Store `ordered` as positions 1..n, never holding two rules at one position."""
    Rule.objects.filter(policy=policy).update(position=F("position") + _POSITION_OFFSET)
    for position, rule in enumerate(ordered, start=1):
        rule.position = position
    Rule.objects.bulk_update(ordered, ["position"])


@transaction.atomic
def rule_move(
    *,
    rule: Rule,
    direction: Literal["up", "down"],
    actor: User,
    request: HttpRequest | None = None,
) -> None:
    """Swap a rule with its neighbour; moving the first up or the last down does nothing."""
    policy = _lock_policy(rule.policy, actor=actor, request=request)
    ordered = list(policy.rules.order_by("position"))
    index = next(i for i, r in enumerate(ordered) if r.pk == rule.pk)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(ordered):
        return
    before = [str(r.pk) for r in ordered]
    ordered[index], ordered[other] = ordered[other], ordered[index]
    _renumber(policy, ordered)
    _record_rule_change(
        policy=policy,
        event=events.POLICY_RULES_REORDERED,
        actor=actor,
        request=request,
        data={"before": before, "after": [str(r.pk) for r in ordered]},
    )


@transaction.atomic
def rule_remove(*, rule: Rule, actor: User, request: HttpRequest | None = None) -> None:
    """Delete a rule and close the gap it leaves in the positions."""
    policy = _lock_policy(rule.policy, actor=actor, request=request)
    rule = Rule.objects.get(pk=rule.pk, policy=policy)
    _require_rule_change_within_rights(
        policy, actor=actor, request=request, before=compile_stored_rule(rule)
    )
    before = _rule_data(rule)
    rule.delete()
    _renumber(policy, list(policy.rules.order_by("position")))
    _record_rule_change(
        policy=policy,
        event=events.POLICY_RULE_REMOVED,
        actor=actor,
        request=request,
        data={"before": before},
    )


@transaction.atomic
def guardrail_rule_add(
    *,
    organization: Organization,
    effect: str,
    actions: Sequence[str],
    scope: str,
    projects: Sequence[Project] = (),
    condition: str = "",
    actor: User,
    request: HttpRequest | None = None,
) -> Rule:
    """Add a deny rule to the organization's guardrails, creating the guardrail policy on
    its first rule (in the same transaction: a refused rule leaves nothing behind)."""
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
        condition=condition,
        actor=actor,
        request=request,
    )
