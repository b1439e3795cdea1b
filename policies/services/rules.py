"""Writes to rules: each compiled strictly before it is saved, within the author's rights
(policies.delegation), with its audit event and version bump."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Max
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from organizations.models import Project, Resource
from organizations.services.organizations import organization_bump_authz_version
from policies import catalogue
from policies.conditions.compiler import ConditionError
from policies.delegation import require_guardrail_editor, require_within_rights
from policies.evaluator import CompiledRule, RuleError, compile_rule
from policies.models import Policy, PolicyAttachment, PolicyVersion, Rule
from policies.selectors.rules import compile_policy_rules, compile_stored_rule
from policies.services.versions import policy_version_record, rules_snapshot

# Renumbering lifts every position above this first: (policy, position) stays unique
# row by row, which SQLite and PostgreSQL check during the update itself.
_POSITION_OFFSET = 1_000_000


def refuse_read_only(policy: Policy) -> None:
    if policy.is_managed:
        raise ValidationError("Managed policies are read-only: duplicate one to change a copy.")


def rule_data(rule: Rule) -> dict[str, Any]:
    return {
        "position": rule.position,
        "effect": rule.effect,
        "actions": rule.actions,
        "scope": rule.scope,
        "projects": sorted(str(pk) for pk in rule.projects.values_list("pk", flat=True)),
        "resources": sorted(str(pk) for pk in rule.resources.values_list("pk", flat=True)),
        "condition": rule.condition,
    }


def _check_rule(
    *,
    policy: Policy,
    effect: str,
    actions: Sequence[str],
    scope: str,
    projects: Sequence[Project],
    resources: Sequence[Resource],
    condition: str,
) -> tuple[str, CompiledRule]:
    """Refuse a rule the evaluator would not compile strictly; messages name the field.

    Returns the condition as it is stored (stripped) and the rule compiled."""
    condition = condition.strip()
    if any(project.organization_id != policy.organization_id for project in projects):
        raise ValidationError({"projects": "Choose projects of this organization."})
    if any(resource.organization_id != policy.organization_id for resource in resources):
        raise ValidationError({"resources": "Choose resources of this organization."})
    # Only the chosen scope's places are kept (and compiled): the others are cleared.
    projects = projects if scope == Rule.Scope.PROJECTS else ()
    resources = resources if scope == Rule.Scope.RESOURCES else ()
    try:
        compiled = compile_rule(
            policy_id=str(policy.pk),
            policy_name=policy.name,
            rule_index=1,
            effect=effect,
            actions=actions,
            scope=scope,
            project_ids=[str(project.pk) for project in projects],
            resources=resource_triples(resources),
            condition=condition,
            is_guardrail=policy.kind == Policy.Kind.GUARDRAIL,
            strict=True,
        )
    except ConditionError as error:
        raise ValidationError({"condition": error.message}) from None
    except catalogue.CatalogueError as error:
        raise ValidationError({"actions": str(error)}) from None
    except RuleError as error:
        field = _PLACES_FIELD.get(scope, "effect")
        raise ValidationError({field: str(error)}) from None
    return condition, compiled


_PLACES_FIELD = {Rule.Scope.PROJECTS: "projects", Rule.Scope.RESOURCES: "resources"}


def resource_triples(resources: Sequence[Resource]) -> list[tuple[str, str, str]]:
    """(id, type, project id) of each resource, as `compile_rule` takes them."""
    return [(str(r.pk), r.type, str(r.project_id)) for r in resources]


def _set_places(
    rule: Rule, scope: str, projects: Sequence[Project], resources: Sequence[Resource]
) -> None:
    """Store the chosen places of the rule's scope, and clear the other scope's."""
    rule.projects.set(projects if scope == Rule.Scope.PROJECTS else [])
    rule.resources.set(resources if scope == Rule.Scope.RESOURCES else [])


def locked_policy(policy: Policy) -> Policy:
    """The policy, locked: concurrent writes to one policy run one after the other.
    Managed policies are refused (read-only)."""
    policy = (
        Policy.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=policy.pk)
    )
    refuse_read_only(policy)
    return policy


def _lock_policy(policy: Policy, *, actor: User, request: HttpRequest | None) -> Policy:
    """`locked_policy` for a rule edit. The guardrails change only by their own permission
    (see `catalogue.GUARDRAIL_EDIT`)."""
    policy = locked_policy(policy)
    if policy.kind == Policy.Kind.GUARDRAIL:
        require_guardrail_editor(organization=policy.organization, actor=actor, request=request)
    return policy


def require_rule_change_within_rights(
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
    change: str,
    preview: Mapping[str, Any] | None = None,
) -> None:
    """The one way out of every rule change: the authorization version, the policy's
    next version (`change` says what it was, e.g. "rule 2 added"), the audit event (with
    the access diff its author previewed and confirmed, policies.preview, if any)."""
    if preview:
        data = {**data, "preview": dict(preview)}
    organization_bump_authz_version(organization=policy.organization)
    policy_version_record(policy, actor, change, request=request)
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
    resources: Sequence[Resource] = (),
    condition: str = "",
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> Rule:
    """Append a rule to a custom or guardrail policy after compiling it strictly."""
    policy = _lock_policy(policy, actor=actor, request=request)
    condition, compiled = _check_rule(
        policy=policy,
        effect=effect,
        actions=actions,
        scope=scope,
        projects=projects,
        resources=resources,
        condition=condition,
    )
    require_rule_change_within_rights(policy, actor=actor, request=request, after=[compiled])
    last = policy.rules.aggregate(last=Max("position"))["last"] or 0
    rule = Rule.objects.create(
        policy=policy,
        position=last + 1,
        effect=effect,
        actions=list(actions),
        scope=scope,
        condition=condition,
    )
    _set_places(rule, scope, projects, resources)
    _record_rule_change(
        policy=policy,
        event=events.POLICY_RULE_ADDED,
        actor=actor,
        request=request,
        data={"after": rule_data(rule)},
        change=f"rule {rule.position} added",
        preview=preview,
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
    resources: Sequence[Resource] = (),
    condition: str = "",
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
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
        resources=resources,
        condition=condition,
    )
    require_rule_change_within_rights(
        policy, actor=actor, request=request, before=compile_stored_rule(rule), after=[compiled]
    )
    before = rule_data(rule)
    rule.effect, rule.actions, rule.scope, rule.condition = effect, list(actions), scope, condition
    rule.save(update_fields=["effect", "actions", "scope", "condition"])
    _set_places(rule, scope, projects, resources)
    after = rule_data(rule)
    if before != after:
        _record_rule_change(
            policy=policy,
            event=events.POLICY_RULE_UPDATED,
            actor=actor,
            request=request,
            data=diff(before, after),
            change=f"rule {rule.position} edited",
            preview=preview,
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
        change=f"rule {index + 1} moved {direction}",
    )


@transaction.atomic
def rule_remove(
    *,
    rule: Rule,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> None:
    """Delete a rule and close the gap it leaves in the positions."""
    policy = _lock_policy(rule.policy, actor=actor, request=request)
    rule = Rule.objects.get(pk=rule.pk, policy=policy)
    require_rule_change_within_rights(
        policy, actor=actor, request=request, before=compile_stored_rule(rule)
    )
    before = rule_data(rule)
    rule.delete()
    _renumber(policy, list(policy.rules.order_by("position")))
    _record_rule_change(
        policy=policy,
        event=events.POLICY_RULE_REMOVED,
        actor=actor,
        request=request,
        data={"before": before},
        change=f"rule {before['position']} removed",
        preview=preview,
    )


def rules_forget_resource(
    *, resource: Resource, actor: User | None, request: HttpRequest | None = None
) -> list[Policy]:
    """Take a resource about to be deleted out of every rule naming it, with one audit
    event per policy changed (its rules, the resource, and the rules it leaves with no
    resource, which now match nothing). Returns those policies. The caller deletes the
    resource and bumps the authorization version once, in the same transaction."""
    links = Rule.resources.through.objects.filter(resource=resource)
    rule_ids = list(links.values_list("rule_id", flat=True))
    if not rule_ids:
        return []
    # Locked in a fixed order: concurrent edits of these policies wait, and never deadlock.
    policy_ids = Rule.objects.filter(pk__in=rule_ids).values("policy_id")
    policies = list(
        Policy.objects.select_for_update(of=("self",)).filter(pk__in=policy_ids).order_by("pk")
    )
    rules = (
        Rule.objects.filter(pk__in=rule_ids)
        .annotate(count=Count("resources"))
        .order_by("policy_id", "position")
    )
    changed: dict[object, list[dict[str, Any]]] = {}
    for rule in rules:
        changed.setdefault(rule.policy_id, []).append(
            {"rule": str(rule.pk), "position": rule.position, "resources_left": rule.count - 1}
        )
    links.delete()
    label = {
        "id": str(resource.pk),
        "name": resource.name,
        "type": resource.type,
        "project": str(resource.project_id),
    }
    for policy in policies:
        rows = changed[policy.pk]
        emptied = [row["position"] for row in rows if not row["resources_left"]]
        data: dict[str, Any] = {"resource": label, "rules": rows}
        if emptied:
            # strict=False compiles an empty chosen set to a rule matching nothing.
            data["note"] = (
                f"Rule{'s' if len(emptied) > 1 else ''} {', '.join(map(str, emptied))} "
                "now name no resource and match nothing."
            )
        event = events.POLICY_RESOURCE_REMOVED
        if policy.kind == Policy.Kind.GUARDRAIL:
            data = {"change": "resource_removed", **data}
            event = events.GUARDRAIL_UPDATED
        record(
            action=event,
            organization=resource.organization,
            actor=actor,
            target=policy,
            data=data,
            request=request,
        )
        policy_version_record(
            policy, actor, f"resource {resource.name} deleted from its rules", request=request
        )
    return policies


@dataclass(frozen=True)
class Restored:
    """What `policy_restore` made: the new version, and what it had to leave out."""

    version: PolicyVersion
    dropped: list[str]


def _places_of(
    organization_id: object, snapshot: Sequence[dict[str, Any]]
) -> tuple[dict[str, Project], dict[str, Resource]]:
    """The snapshot's projects and resources that still exist in the organization, by
    id (two queries)."""
    project_ids = {pk for data in snapshot for pk in data.get("projects", ())}
    resource_ids = {pk for data in snapshot for pk in data.get("resources", ())}
    projects = Project.objects.filter(organization_id=organization_id, pk__in=project_ids)
    resources = Resource.objects.filter(organization_id=organization_id, pk__in=resource_ids)
    return (
        {str(project.pk): project for project in projects},
        {str(resource.pk): resource for resource in resources},
    )


def _lost(count: int, what: str, position: int) -> str:
    if count == 1:
        return f"Rule {position}: 1 {what} no longer exists, left out."
    return f"Rule {position}: {count} {what}s no longer exist, left out."


@transaction.atomic
def policy_restore(
    *,
    policy: Policy,
    version: PolicyVersion,
    actor: User | None,
    request: HttpRequest | None = None,
) -> Restored:
    """Replace the policy's rules with those of one of its versions, as a new version.

    Projects and resources deleted since are left out (`Restored.dropped` says which
    rules lost some; a rule left with none matches nothing). Like any rule change it is
    refused beyond the author's rights (the delegation ceiling) and bumps the
    authorization version. Name and description stay as they are."""
    policy = _lock_policy(policy, actor=actor, request=request)
    if version.policy_id != policy.pk:
        raise ValidationError("This version is of another policy.")
    snapshot = sorted(version.rules, key=lambda data: data["position"])
    projects, resources = _places_of(policy.organization_id, snapshot)
    planned: list[tuple[dict[str, Any], list[Project], list[Resource]]] = []
    after: list[CompiledRule] = []
    dropped: list[str] = []
    for position, data in enumerate(snapshot, start=1):
        rule_projects = [projects[pk] for pk in data.get("projects", ()) if pk in projects]
        rule_resources = [resources[pk] for pk in data.get("resources", ()) if pk in resources]
        if missing := len(data.get("projects", ())) - len(rule_projects):
            dropped.append(_lost(missing, "project", position))
        if missing := len(data.get("resources", ())) - len(rule_resources):
            dropped.append(_lost(missing, "resource", position))
        planned.append((data, rule_projects, rule_resources))
        # Leniently, as stored rules are: a rule left with no place matches nothing.
        after.append(
            compile_rule(
                policy_id=str(policy.pk),
                policy_name=policy.name,
                rule_index=position,
                effect=data["effect"],
                actions=data["actions"],
                scope=data["scope"],
                project_ids=[str(project.pk) for project in rule_projects],
                resources=resource_triples(rule_resources),
                condition=data.get("condition", ""),
                is_guardrail=policy.kind == Policy.Kind.GUARDRAIL,
                strict=False,
            )
        )
    require_rule_change_within_rights(
        policy,
        actor=actor,
        request=request,
        before=compile_policy_rules([policy.pk]),
        after=after,
    )
    before, from_version = rules_snapshot(policy), policy.version
    policy.rules.all().delete()
    for position, (data, rule_projects, rule_resources) in enumerate(planned, start=1):
        rule = Rule.objects.create(
            policy=policy,
            position=position,
            effect=data["effect"],
            actions=list(data["actions"]),
            scope=data["scope"],
            condition=data.get("condition", ""),
        )
        _set_places(rule, rule.scope, rule_projects, rule_resources)
    organization_bump_authz_version(organization=policy.organization)
    new = policy_version_record(
        policy, actor, f"restored version {version.number}", request=request
    )
    assert new is not None  # managed policies were refused by the lock
    trail: dict[str, Any] = {
        "restored_version": version.number,
        "from_version": from_version,
        "to_version": new.number,
        "before": before,
        "after": new.rules,
    }
    if dropped:
        trail["dropped"] = dropped
    event = events.POLICY_RESTORED
    if policy.kind == Policy.Kind.GUARDRAIL:  # the guardrails' changes share one event type
        trail, event = {"change": "restored", **trail}, events.GUARDRAIL_UPDATED
    record(
        action=event,
        organization=policy.organization,
        actor=actor,
        target=policy,
        data=trail,
        request=request,
    )
    return Restored(version=new, dropped=dropped)
