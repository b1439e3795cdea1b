"""Recording policy versions: every save of a custom or guardrail policy keeps a numbered
copy of its details and rules, so it can be compared and restored (restoring is a rule
change: `policies.services.rules.policy_restore`). Managed policies have no versions: the
catalogue in code is their history."""

from __future__ import annotations

from typing import Any

from django.db.models import Max, Prefetch
from django.http import HttpRequest

from accounts.models import User
from organizations.models import Project, Resource
from policies.models import Policy, PolicyVersion

CHANGE_MAX_LENGTH = PolicyVersion._meta.get_field("change").max_length


def rules_snapshot(policy: Policy) -> list[dict[str, Any]]:
    """The policy's rules as `rule_data` words them, in three queries whatever their
    number (rule_data reads each rule's places on its own)."""
    rules = policy.rules.order_by("position").prefetch_related(
        Prefetch("projects", Project.objects.only("pk")),
        Prefetch("resources", Resource.objects.only("pk")),
    )
    return [
        {
            "position": rule.position,
            "effect": rule.effect,
            "actions": list(rule.actions),
            "scope": rule.scope,
            "projects": sorted(str(project.pk) for project in rule.projects.all()),
            "resources": sorted(str(resource.pk) for resource in rule.resources.all()),
            "condition": rule.condition,
        }
        for rule in rules
    ]


def _author_label(actor: User | None, request: HttpRequest | None) -> str:
    if actor is not None:
        return str(actor)
    # An application's API key acts with no user: name the application.
    principal = getattr(request, "principal", None)
    name = getattr(principal, "name", "")
    return f"application {name}" if name else ""


def policy_version_record(
    policy: Policy, actor: User | None, change: str, *, request: HttpRequest | None = None
) -> PolicyVersion | None:
    """Keep the policy as it now stands as its next version, and make that number the
    policy's `version`. Call it inside the save's transaction, with the policy locked
    (or new), after the change. Managed policies are skipped (None)."""
    if policy.is_managed:
        return None
    last = policy.versions.aggregate(last=Max("number"))["last"] or 0
    number = last + 1
    if policy.version != number:
        Policy.objects.filter(pk=policy.pk).update(version=number)
        policy.version = number
    return PolicyVersion.objects.create(
        policy=policy,
        number=number,
        author=actor if isinstance(actor, User) else None,
        author_label=_author_label(actor, request)[:255],
        name=policy.name,
        description=policy.description,
        rules=rules_snapshot(policy),
        change=change[:CHANGE_MAX_LENGTH],
    )
