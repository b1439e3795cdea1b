"""Change previews: who gains or loses what if a change that can alter access is saved.

One diff engine over compiled rule sets, built on `who_can` (indexed by action: a
constant number of queries whatever the number of principals):

1. the questions a change can affect are read from the rules it touches, before and
   after (a rule's actions, its catalogue wildcards expanded by the compile; an attached
   policy's rules): each action at organization level, in every project, in each project
   the rules name, on each resource they name. At most `MAX_QUESTIONS`; the page says
   when a change touches more;
2. the change runs in the rolled-back transaction of `policies.lockout` (the self-lockout
   check's), and `who_can` answers the questions there, on the saved rule set (taken
   before the change) with the touched policies' rules compiled again: the
   organization's version seen in that transaction is one a rolled-back change may give
   to the next real one, so nothing is read from or kept in the shared cache;
3. `who_can` answers them again on the saved state, and the answers are compared by
   bunches of principals holding the same policies; each principal whose answer moved
   is named: gaining (now allowed), losing (now not), or now conditional. A change of
   rules only (`same_reach`) never moves whom the policies reach: both sides share one
   read of it, answered in the transaction, and only the principals holding a changed
   policy are decided again.

A confirmed change records the diff it was shown (`AccessDiff.audit_data`, bounded) in
its audit event; the confirmation carries the diff's digest, and a change whose diff
moved since (someone else saved meanwhile) is shown again rather than saved.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from organizations.models import Application, Membership, Organization, Project, Resource
from policies.catalogue import ACTIONS, ORGANIZATION, RESOURCE_TYPE_OF
from policies.conditions.facts import ResourceFacts
from policies.evaluator import CompiledRule, CompiledRuleSet, ResourceScope
from policies.lockout import rolled_back

# who_can's batch form: several questions sharing its queries.
from policies.selectors.who_can import (
    Question,
    WhoCan,
    answer_all,
    answer_rule_change,
    compared,
    recompiled,
    saved_rules,
)

MAX_QUESTIONS = 20  # (action, place) pairs compared; a preview names the first ones
MAX_NAMED = 10  # principals named per question and kind of change (the rest counted)
PREVIEW_FIELD = "preview"
DIGEST_FIELD = "preview_digest"

Change = Literal["gain", "lose", "conditional"]
CHANGES: tuple[Change, ...] = ("gain", "lose", "conditional")
_State = Literal["yes", "maybe"]  # absent: not allowed
_CHANGE_OF: dict[str | None, Change] = {"yes": "gain", "maybe": "conditional", None: "lose"}
_STATE_OF: dict[str, _State] = {"owner": "yes", "allowed": "yes", "conditional": "maybe"}
_Ref = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Place:
    """Where an action is asked about: the organization or every project (no project),
    one project, or one resource."""

    action: str
    project_id: str | None = None
    resource: ResourceFacts | None = None
    label: str = ""

    @property
    def key(self) -> str:
        return f"{self.action} {self.label}" if self.label else self.action


@dataclass(frozen=True, slots=True)
class Named:
    """A principal whose answer moved, and how it holds (or held) the action."""

    kind: str
    label: str
    path: str


@dataclass
class PlaceDiff:
    place: Place
    counts: dict[Change, int]
    named: dict[Change, list[Named]]
    unchanged: int  # allowed before and after

    @property
    def changed(self) -> bool:
        return any(self.counts.values())

    @property
    def entries(self) -> list[tuple[Change, int, list[Named], int]]:
        """(change, count, named, count not named) of each kind of change that occurs."""
        return [
            (change, self.counts[change], self.named[change], self.counts[change] - len(named))
            for change, named in self.named.items()
            if self.counts[change]
        ]


@dataclass
class AccessDiff:
    places: list[PlaceDiff]
    more: int  # questions left out past `MAX_QUESTIONS`
    _ids: dict[str, dict[Change, list[str]]] = field(repr=False, default_factory=dict)

    @property
    def changed(self) -> list[PlaceDiff]:
        return [diff for diff in self.places if diff.changed]

    @property
    def unchanged(self) -> list[PlaceDiff]:
        return [diff for diff in self.places if not diff.changed]

    @property
    def digest(self) -> str:
        """Who moves where, hashed: a confirmation says which diff it confirms."""
        text = json.dumps([self._ids, self.more], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def audit_data(self) -> dict[str, Any]:
        """The diff for the change's audit event: labels of the first principals of each
        changed question, with counts; bounded like the page."""
        data: dict[str, Any] = {}
        for diff in self.changed:
            entry: dict[str, Any] = {
                change: [n.label for n in diff.named[change]]
                for change in CHANGES
                if diff.counts[change]
            }
            entry["counts"] = {change: n for change, n in diff.counts.items() if n}
            data[diff.place.key] = entry
        if self.more:
            data["more"] = self.more
        return data


# ------------------------------------------------------------------------ questions


def places_of(organization: Organization, rules: Iterable[CompiledRule]) -> list[Place]:
    """The questions `rules` can change the answer to, sorted, labels read in two
    queries at most."""
    wanted: set[tuple[str, str | None, tuple[str, str, str] | None]] = set()
    for rule in rules:
        for action in rule.actions:
            if action not in ACTIONS:
                continue
            wanted.add((action, None, None))  # the organization, or every project
            if isinstance(rule.scope, frozenset):
                wanted.update((action, project, None) for project in rule.scope)
            elif isinstance(rule.scope, ResourceScope):
                kind = RESOURCE_TYPE_OF.get(action)
                for triple in rule.scope.resources:
                    if triple[1] == kind:
                        wanted.add((action, triple[2], triple))
                    wanted.add((action, triple[2], None))
    projects = {project for _, project, _ in wanted if project}
    resources = {triple[0] for _, _, triple in wanted if triple}
    project_names = dict(
        Project.objects.filter(organization=organization, pk__in=projects).values_list("pk", "name")
        if projects
        else ()
    )
    resource_names = dict(
        Resource.objects.filter(organization=organization, pk__in=resources).values_list(
            "pk", "name"
        )
        if resources
        else ()
    )
    project_names = {str(pk): name for pk, name in project_names.items()}
    resource_names = {str(pk): name for pk, name in resource_names.items()}
    places = []
    for action, project, triple in sorted(wanted, key=lambda w: (w[0], w[1] or "", w[2] or ())):
        if triple is not None:
            rid, kind, pid = triple
            facts = ResourceFacts(type=kind, id=rid, project_id=pid)
            label = f"on {resource_names.get(rid, rid)}"
            places.append(Place(action, pid, facts, label))
        elif project is not None:
            places.append(Place(action, project, None, f"in {project_names.get(project, project)}"))
        else:
            label = "" if ACTIONS[action].level == ORGANIZATION else "in every project"
            places.append(Place(action, None, None, label))
    return places


def _questions(places: Sequence[Place]) -> list[Question]:
    return [Question(p.action, p.project_id, p.resource) for p in places]


def _answers(
    organization: Organization, places: Sequence[Place], ruleset: CompiledRuleSet
) -> list[WhoCan]:
    questions = _questions(places)
    return answer_all(organization, questions, ruleset=ruleset) if questions else []


# --------------------------------------------------------------------------- engine


def access_diff(
    request: HttpRequest,
    rules: Sequence[CompiledRule],
    change: Callable[[], Iterable[CompiledRule]],
    *,
    same_reach: bool = False,
) -> AccessDiff:
    """What `change()` would do to access, nothing saved: `rules` are those it touches as
    they stand, and `change()` returns those it touches once made (a rule added or
    edited); no other policy's rules change, so only these are compiled again for the
    state after it (`recompiled`). `same_reach`: the change only adds, edits or removes
    rules, never whom a policy reaches (an attachment, a group's members): then both
    sides share one read of that, and only the principals holding these policies are
    decided again (`answer_rule_change`). A `ValidationError` of the change (the
    delegation ceiling, say) propagates."""
    organization: Organization = request.organization  # type: ignore[attr-defined]
    # Taken before the change: rolling it back forgets the organization's cached rules.
    saved = saved_rules(organization)

    def inspect(
        touched: Iterable[CompiledRule],
    ) -> tuple[list[Place], list[WhoCan] | None, list[WhoCan]]:
        changed = [*rules, *touched]
        places = places_of(organization, changed)
        shown = places[:MAX_QUESTIONS]
        policies = {rule.policy_id for rule in changed}
        if not same_reach:
            return places, None, _answers(organization, shown, recompiled(saved, policies))
        if not shown:
            return places, [], []
        return places, *answer_rule_change(organization, _questions(shown), saved, policies)

    places, before, after = rolled_back(request, change, inspect)
    shown = places[:MAX_QUESTIONS]
    if before is None:  # whom the policies reach, read again as saved
        before = _answers(organization, shown, saved)
    return _diff(shown, before, after, more=len(places) - len(shown))


def _diff(
    places: Sequence[Place], before: Sequence[WhoCan], after: Sequence[WhoCan], *, more: int
) -> AccessDiff:
    diffs: list[tuple[Place, dict[Change, list[_Ref]], int, WhoCan, WhoCan]] = []
    ids: dict[str, dict[Change, list[str]]] = {}
    for place, was, now, bunches in zip(
        places, before, after, compared(before, after), strict=True
    ):
        # Principals answering alike on both sides move together (blocked: not allowed).
        moved: dict[Change, list[_Ref]] = {change: [] for change in CHANGES}
        unchanged = 0
        for bunch in bunches:
            old, new = _STATE_OF.get(bunch.before or ""), _STATE_OF.get(bunch.after or "")
            if old != new:
                moved[_CHANGE_OF[new]].extend(bunch.refs)
            elif new == "yes":
                unchanged += bunch.size
        for refs in moved.values():
            refs.sort()
        diffs.append((place, moved, unchanged, was, now))
        if any(moved.values()):
            ids[place.key] = {c: [f"{k}:{pk}" for k, pk in refs] for c, refs in moved.items()}
    shown = {ref for _, moved, *_ in diffs for refs in moved.values() for ref in refs[:MAX_NAMED]}
    labels = _labels(shown)
    result = []
    for place, moved, unchanged, was, now in diffs:
        named: dict[Change, list[Named]] = {}
        for change, refs in moved.items():
            rows = [(pk, *labels[(kind, pk)], kind) for kind, pk in refs[:MAX_NAMED]]
            rows.sort(key=lambda row: (row[1], row[0]))
            named[change] = [_named(change, raw, was, now) for raw in rows]
        counts = {change: len(refs) for change, refs in moved.items()}
        result.append(PlaceDiff(place, counts, named, unchanged))
    return AccessDiff(result, more, ids)


def _named(change: Change, raw: tuple[Any, ...], was: WhoCan, now: WhoCan) -> Named:
    """How a principal holds the action now (gaining), or held it (losing)."""
    kind, label = raw[3], raw[1]
    if change == "lose":
        row = was.rows_of([raw])[0]
        after = now.rows_of([raw])[0] if now.outcome_of((kind, raw[0])) is not None else None
        held = f"had it: {row.path_text}" if row.path_text else "had it"
        if after is not None and after.blocked_text:
            return Named(kind, label, f"{held}; now blocked by {after.blocked_text}")
        return Named(kind, label, held)
    row = now.rows_of([raw])[0]
    path = row.path_text
    if change == "conditional" and row.condition_text:
        path = f"{path}; {row.condition_text}" if path else row.condition_text
    return Named(kind, label, path)


def _labels(refs: set[_Ref]) -> dict[_Ref, tuple[str, str]]:
    """(label, name) of the principals named, in two queries at most."""
    users = [pk for kind, pk in refs if kind == "user"]
    apps = [pk for kind, pk in refs if kind == "application"]
    found: dict[_Ref, tuple[str, str]] = {}
    if users:
        rows = Membership.objects.filter(pk__in=users).values_list(
            "pk", "user__email", "user__full_name"
        )
        found.update({("user", str(pk)): (email, name) for pk, email, name in rows})
    if apps:
        rows = Application.objects.filter(pk__in=apps).values_list("pk", "name")
        found.update({("application", str(pk)): (name, "") for pk, name in rows})
    return {ref: found.get(ref, ("(gone)", "")) for ref in refs}


# ---------------------------------------------------------------------------- views

TEMPLATE = "policies/preview.html"
# Not carried into the confirmation: it is a new post of the same change.
_NOT_CARRIED = frozenset({"csrfmiddlewaretoken", PREVIEW_FIELD, DIGEST_FIELD})


def asked(request: HttpRequest) -> Literal["preview", "confirm"] | None:
    """ "preview" for the Preview button, "confirm" for a previewed change confirmed, None
    for a plain save (previewing is offered, not forced)."""
    if request.POST.get(PREVIEW_FIELD) == "1":
        return "preview"
    return "confirm" if request.POST.get(DIGEST_FIELD) else None


def confirms(request: HttpRequest, diff: AccessDiff) -> bool:
    """Does the posted confirmation name this very diff?"""
    return secrets.compare_digest(request.POST.get(DIGEST_FIELD, ""), diff.digest)


def render_preview(
    request: HttpRequest,
    diff: AccessDiff,
    *,
    title: str,
    target: str,
    cancel_url: str,
    stale: bool = False,
) -> HttpResponse:
    """The diff with Confirm (the same form posted again with the diff's digest) and
    Cancel: for HTMX, in place of `target` (an element id); else a page. `stale`: the
    confirmed diff is no longer what saving would do."""
    context = {
        "diff": diff,
        "title": title,
        "target": target,
        "cancel_url": cancel_url,
        "stale": stale,
        "post_url": request.get_full_path(),
        "fields": [
            (name, value)
            for name, values in request.POST.lists()
            if name not in _NOT_CARRIED
            for value in values
        ],
        "digest_field": DIGEST_FIELD,
        "max_questions": MAX_QUESTIONS,
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, f"{TEMPLATE}#preview", context)
    return render(request, TEMPLATE, context)
