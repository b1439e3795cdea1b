"""Reads of policy versions: a policy's list (newest first), one version, and what it
changed against the version before it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db.models import QuerySet
from django.http import Http404

from organizations.models import Project, Resource
from policies.models import Policy, PolicyVersion

# The fields of a rule snapshot a comparison reads, in the order people read them.
RULE_FIELDS = ("effect", "actions", "scope", "projects", "resources", "condition")
# The largest number a version can have (PostgreSQL's integer).
MAX_NUMBER = 2_147_483_647


def versions_of(policy: Policy) -> QuerySet[PolicyVersion]:
    """The policy's versions, newest first, without their rules (a list shows none)."""
    return PolicyVersion.objects.filter(policy=policy).defer("rules").order_by("-number")


def version_for(*, policy: Policy, number: int) -> PolicyVersion:
    """One version of a policy found through its organization (`policy_for`): another
    organization's is 404."""
    if not 1 <= number <= MAX_NUMBER:  # a URL's number past any column's range
        raise Http404("No such version.")
    try:
        version = PolicyVersion.objects.get(policy=policy, number=number)
    except PolicyVersion.DoesNotExist:
        raise Http404("No such version.") from None
    version.policy = policy  # already read, through the organization
    return version


def previous_of(version: PolicyVersion) -> PolicyVersion | None:
    return (
        PolicyVersion.objects.filter(policy_id=version.policy_id, number__lt=version.number)
        .order_by("-number")
        .first()
    )


@dataclass(frozen=True)
class RuleChange:
    """One position compared: added, removed, changed (`fields` says which) or same."""

    position: int
    status: Literal["added", "removed", "changed", "same"]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionDiff:
    previous: PolicyVersion | None
    details: list[tuple[str, str, str]] = field(default_factory=list)  # (field, before, after)
    rules: list[RuleChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.details) or any(rule.status != "same" for rule in self.rules)


def compare(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> list[RuleChange]:
    """The two rule lists compared position by position (a rule moved shows as changed
    at both places: simple, and what a reader of the rules sees)."""
    old = {data["position"]: data for data in before}
    new = {data["position"]: data for data in after}
    changes = []
    for position in sorted(old.keys() | new.keys()):
        was, now = old.get(position), new.get(position)
        if was is None:
            changes.append(RuleChange(position, "added", None, now))
        elif now is None:
            changes.append(RuleChange(position, "removed", was, None))
        else:
            fields = tuple(name for name in RULE_FIELDS if was.get(name) != now.get(name))
            status = "changed" if fields else "same"
            changes.append(RuleChange(position, status, was, now, fields))
    return changes


def version_diff(version: PolicyVersion, previous: PolicyVersion | None) -> VersionDiff:
    """What `version` changed against `previous` (everything is added for the first), its
    rules carrying their places' names as they are now (two queries)."""
    details = []
    if previous is not None:
        for name in ("name", "description"):
            was, now = getattr(previous, name), getattr(version, name)
            if was != now:
                details.append((name, was, now))
    earlier = previous.rules if previous is not None else []
    named = _with_names(version.policy.organization_id, [*earlier, *version.rules])
    rules = compare(named[: len(earlier)], named[len(earlier) :])
    return VersionDiff(previous=previous, details=details, rules=rules)


def _with_names(organization_id: object, snapshots: Sequence[dict[str, Any]]) -> list[dict]:
    """Copies of the snapshots with `project_names` and `resource_names`, as named now
    ("a deleted project" for one gone since)."""
    project_ids = {pk for data in snapshots for pk in data.get("projects", ())}
    resource_ids = {pk for data in snapshots for pk in data.get("resources", ())}
    projects = {
        str(pk): name
        for pk, name in Project.objects.filter(organization_id=organization_id, pk__in=project_ids)
        .order_by()
        .values_list("pk", "name")
    }
    resources = {
        str(pk): name
        for pk, name in Resource.objects.filter(
            organization_id=organization_id, pk__in=resource_ids
        )
        .order_by()
        .values_list("pk", "name")
    }
    return [
        {
            **data,
            "project_names": [
                projects.get(pk, "a deleted project") for pk in data.get("projects", ())
            ],
            "resource_names": [
                resources.get(pk, "a deleted resource") for pk in data.get("resources", ())
            ],
        }
        for data in snapshots
    ]
