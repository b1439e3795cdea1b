"""Who can do an action: every principal the organization's policies allow it, and how.

Indexed by action, never "decide for every principal" in a loop over the database:

1. the rules of every policy attached in the organization, and of its guardrail, are
   compiled once (`compile_policy_rules`, the evaluator's compile) and only those naming
   the action with a scope that can match the question are kept (`candidates`);
2. the principals those rules' policies reach, directly or through their groups, are read
   as ids, in a constant number of queries (attachments, group links, owners and
   inactive members);
3. principals are grouped by the set of relevant policies reaching them, each distinct
   set reduced to its shape (its deny rules; whether it holds an unconditional allow; a
   conditional one), and the evaluator decides once per shape, on a rule set of those
   denies, the guardrails and one allow (any allow decides alike: only the path, found
   for the rows shown, names it). Conditions are never evaluated against a made-up
   request: the decision is taken on the unconditional rules, and conditional allows (or
   denies) are reported as "allowed if …" (or "… unless …"). A condition that no longer
   compiles is decided as the evaluator always decides it (an allow never, a deny
   always).

Owners are allowed ("owner"). Suspended members (and deactivated accounts) are left out
of the rows, and counted (`counts["suspended"]`): the evaluator denies them everything.

Labels (email, application name) are read only for the rows shown: a page costs a
constant number of queries whatever the organization's size (7 without a search, 8 with
one), and memory holds ids. At 10,000 users a page takes about 110 ms (p95 under 250 ms)
on PostgreSQL: benchmarks/bench_who_can.py.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import BooleanField, F, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone

from organizations.models import Application, Group, Membership, Organization
from policies import authz
from policies.catalogue import ACTIONS
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Principal,
    RequestFacts,
    ResourceFacts,
    decide,
)
from policies.models import Policy, PolicyAttachment
from policies.selectors.rules import compile_policy_rules

__all__ = [
    "PAGE_SIZE",
    "STATUSES",
    "PathStep",
    "WhoCan",
    "WhoCanRow",
    "who_can",
    "who_can_counts",
]

Status = Literal["owner", "allowed", "conditional", "blocked"]
STATUSES: tuple[Status, ...] = ("owner", "allowed", "conditional", "blocked")
PAGE_SIZE = 25
Kind = Literal["user", "application"]
# ("user", membership id) or ("application", application id); ids as strings, whose hash
# Python caches (a UUID's is computed on every lookup: a third of the time at 10,000 users).
_Ref = tuple[str, str]

# Decisions here read no request fact: only unconditional rules (and conditions that no
# longer compile, which fail whatever the request) reach the evaluator.
_ANYONE = Principal(type="user", id="", label="any principal")


def _no_facts() -> RequestFacts:
    return RequestFacts(ip="", user_agent="", time=timezone.now())


# ----------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class PathStep:
    """One rule that grants the action to a principal, and how its policy reaches them."""

    rule: CompiledRule
    direct: bool
    groups: tuple[str, ...]

    @property
    def via(self) -> str:
        parts = ["directly"] if self.direct else []
        if self.groups:
            plural = "s" if len(self.groups) > 1 else ""
            parts.append(f"through group{plural} {', '.join(self.groups)}")
        return " and ".join(parts)

    @property
    def text(self) -> str:
        return f"rule {self.rule.rule_index} of policy {self.rule.policy_name}, {self.via}"


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the evaluator answers for one shape of policy set (shared by every principal
    of that shape). The granting rules, which differ from one principal to the next, are
    found for the rows shown only."""

    status: Status
    # Conditional deny rules (guardrails included) that may take the allow back.
    unless: tuple[CompiledRule, ...] = ()
    blocked_by: CompiledRule | None = None
    conditional_grant: bool = False


_OWNER = _Outcome("owner")


@dataclass(frozen=True, slots=True)
class WhoCanRow:
    """A principal in the answer, with its path, its condition, or what blocks it."""

    type: Kind
    id: uuid.UUID  # a user's membership id, or the application's id
    label: str
    name: str
    status: Status
    paths: tuple[PathStep, ...] = ()
    unless: tuple[CompiledRule, ...] = ()
    blocked_by: CompiledRule | None = None
    conditional_grant: bool = False

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(step.rule.condition_source for step in self.paths if step.rule.condition)

    @property
    def condition_text(self) -> str:
        """ "" when the allow depends on no condition; else "allowed if …[, unless …]"."""
        if self.status != "conditional":
            return ""
        text = ""
        if self.conditional_grant:
            text = "allowed if " + " or ".join(f"({c})" for c in self.conditions)
        if self.unless:
            unless = " or ".join(f"({rule.condition_source})" for rule in self.unless)
            text = f"{text}, unless {unless}" if text else f"allowed unless {unless}"
        return text

    @property
    def path_text(self) -> str:
        if self.status == "owner":
            return "owner"
        return "; ".join(step.text for step in self.paths)

    @property
    def blocked_text(self) -> str:
        return self.blocked_by.label if self.blocked_by is not None else ""


# --------------------------------------------------------------------------- answer


@dataclass
class WhoCan:
    """The answer for one question. `counts` by status (and `suspended`, left out) are
    known without reading a label; rows are read a page at a time."""

    organization: Organization
    action: str
    project_id: str | None
    resource: ResourceFacts | None
    counts: dict[str, int]
    outcomes: dict[_Ref, _Outcome] = field(repr=False)
    _ids: dict[Status, dict[Kind, list[str]]] = field(repr=False)
    _direct: dict[_Ref, set[str]] = field(repr=False)
    _groups_of: dict[_Ref, list[str]] = field(repr=False)
    _group_policies: dict[str, set[str]] = field(repr=False)
    _group_names: dict[str, str] = field(repr=False)
    _keys: dict[_Ref, frozenset[str]] = field(repr=False)
    _rules: tuple[CompiledRule, ...] = field(repr=False)

    @property
    def total(self) -> int:
        return sum(self.counts[status] for status in STATUSES)

    def rows(self, *, search: str = "", status: str = "") -> QuerySet[Any]:
        """Every principal of the answer as (id, label, name, type) rows, sorted by label
        then id: one query, labels read only for the rows taken from it."""
        return _principal_rows(*self._wanted(status), search)

    def _wanted(self, status: str) -> tuple[list[str], list[str]]:
        """The ids of the users and of the applications of `status` (any: "")."""
        wanted = [status] if status in STATUSES else list(STATUSES)
        users = [pk for s in wanted for pk in self._ids[s]["user"]]  # type: ignore[index]
        apps = [pk for s in wanted for pk in self._ids[s]["application"]]  # type: ignore[index]
        return users, apps

    def page(self, number: object, *, search: str = "", status: str = "") -> Page:
        """Page `number` (1-based; out of range: the last) of `PAGE_SIZE` `WhoCanRow`s."""
        rows: Any = self.rows(search=search, status=status)
        if not search:  # the count is known: no COUNT query
            known = self.counts[status] if status in STATUSES else self.total
            rows = _Counted(rows, known)
        page = Paginator(rows, PAGE_SIZE).get_page(number)
        page.object_list = self.rows_of(page.object_list)
        return page

    def after(
        self,
        key: tuple[str, uuid.UUID] | None,
        limit: int,
        *,
        search: str = "",
        status: str = "",
    ) -> tuple[list[WhoCanRow], tuple[str, uuid.UUID] | None]:
        """Keyset paging: up to `limit` rows after (label, id) `key`, and the key of the
        last row when more follow (None on the last page)."""
        raw = list(_principal_rows(*self._wanted(status), search, after=key)[: limit + 1])
        more = len(raw) > limit
        rows = self.rows_of(raw[:limit])
        last = (rows[-1].label, rows[-1].id) if more and rows else None
        return rows, last

    def iter_rows(
        self, *, search: str = "", status: str = "", chunk: int = 500
    ) -> Iterator[WhoCanRow]:
        """Every row, read `chunk` at a time (an export: memory bounded by the chunk)."""
        key: tuple[str, uuid.UUID] | None = None
        while True:
            rows, key = self.after(key, chunk, search=search, status=status)
            yield from rows
            if key is None:
                return

    def rows_of(self, raw: Sequence[Sequence[Any]]) -> list[WhoCanRow]:
        """`WhoCanRow`s of (id, label, name, type) rows read from `rows()`."""
        return [self._row(kind, pk, label, name) for pk, label, name, kind in raw]

    def _row(self, kind: Kind, pk: uuid.UUID, label: str, name: str) -> WhoCanRow:
        ref = (kind, str(pk))
        outcome = self.outcomes[ref]
        if outcome.status == "owner":
            return WhoCanRow(kind, pk, label, name, "owner")
        direct = self._direct.get(ref, set())
        groups = self._groups_of.get(ref, ())
        held = self._keys.get(ref, frozenset())
        allows = [r for r in self._rules if r.effect == "allow" and r.policy_id in held]
        # The unconditional allows when it holds one (those decide), else the conditional.
        granting = [r for r in allows if r.condition is None] or [r for r in allows if _usable(r)]
        paths = []
        for rule in granting:
            through = sorted(
                self._group_names.get(g, "")
                for g in groups
                if rule.policy_id in self._group_policies.get(g, ())
            )
            paths.append(PathStep(rule, rule.policy_id in direct, tuple(through)))
        return WhoCanRow(
            kind,
            pk,
            label,
            name,
            outcome.status,
            tuple(paths),
            outcome.unless,
            outcome.blocked_by,
            outcome.conditional_grant,
        )


class _Counted:
    """A queryset whose length is known, for the paginator (it asks `count()`)."""

    def __init__(self, queryset: QuerySet[Any], count: int) -> None:
        self.queryset, self._count = queryset, count

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, key: Any) -> Any:
        return self.queryset[key]


def _among(queryset: QuerySet[Any], ids: Sequence[str]) -> QuerySet[Any]:
    """`queryset` filtered to primary keys `ids`. On PostgreSQL as one array parameter:
    thousands of `IN` literals cost more to send and plan than the query itself."""
    if connections[queryset.db].vendor != "postgresql":
        return queryset.filter(pk__in=ids)
    meta = queryset.model._meta
    column = f'"{meta.db_table}"."{meta.pk.column}"'  # the model's own names, not input
    # One array literal: ids read from the database (UUIDs), so nothing to escape.
    literal = "{" + ",".join(ids) + "}"
    return queryset.filter(RawSQL(f"{column} = ANY(%s::uuid[])", (literal,), BooleanField()))  # noqa: S611


def _principal_rows(
    users: Sequence[str],
    applications: Sequence[str],
    search: str,
    *,
    after: tuple[str, uuid.UUID] | None = None,
) -> QuerySet[Any]:
    """(id, label, name, type) of these memberships and applications, sorted by label then
    id, searched by email, name or application name."""
    members = _among(Membership.objects.all(), users).annotate(
        label=F("user__email"), name=F("user__full_name"), kind=Value("user")
    )
    apps = _among(Application.objects.all(), applications).annotate(
        label=F("name"), kind=Value("application")
    )
    if search:
        members = members.filter(
            Q(user__email__icontains=search) | Q(user__full_name__icontains=search)
        )
        apps = apps.filter(name__icontains=search)
    if after is not None:
        label, pk = after
        members = members.filter(Q(label__gt=label) | Q(label=label, pk__gt=pk))
        apps = apps.filter(Q(label__gt=label) | Q(label=label, pk__gt=pk))
    # No application name in the second column: "name" is for a user's full name.
    members_rows = members.order_by().values_list("pk", "label", "name", "kind")
    apps_rows = (
        apps.annotate(blank=Value("")).order_by().values_list("pk", "label", "blank", "kind")
    )
    return members_rows.union(apps_rows, all=True).order_by("label", "pk")


# -------------------------------------------------------------------------- compute


def _rule_set(organization: Organization) -> CompiledRuleSet:
    """Every rule of the organization, indexed: compiling every attached policy is the
    costly part of an answer (and the resource page asks on every view), so it is done once
    per authorization version."""
    return authz.remembered(
        organization, "who-can", lambda: CompiledRuleSet(_organization_rules(organization))
    )


def _organization_rules(organization: Organization) -> list[CompiledRule]:
    """Every rule of the policies attached in the organization and of its guardrail,
    compiled once (two queries)."""
    attached = PolicyAttachment.objects.filter(organization=organization).values("policy_id")
    ids = Policy.objects.filter(
        Q(pk__in=attached) | Q(organization=organization, kind=Policy.Kind.GUARDRAIL)
    ).values_list("pk", flat=True)
    return compile_policy_rules(ids)


@dataclass
class _Reach:
    """Who the relevant policies reach, as ids."""

    direct: dict[_Ref, set[str]] = field(default_factory=dict)
    groups_of: dict[_Ref, list[str]] = field(default_factory=dict)
    group_policies: dict[str, set[str]] = field(default_factory=dict)
    group_names: dict[str, str] = field(default_factory=dict)
    owners: set[str] = field(default_factory=set)
    inactive: set[str] = field(default_factory=set)

    def policies_of(self, ref: _Ref) -> frozenset[str]:
        found = set(self.direct.get(ref, ()))
        for group in self.groups_of.get(ref, ()):
            found |= self.group_policies[group]
        return frozenset(found)

    def refs(self) -> set[_Ref]:
        return self.direct.keys() | self.groups_of.keys()


def _reach(organization: Organization, policy_ids: set[str]) -> _Reach:
    """Attachments of `policy_ids` in the organization, direct and through groups, and
    the organization's owners and inactive members: at most four queries."""
    reach = _Reach()
    if policy_ids:
        attachments = PolicyAttachment.objects.filter(
            organization=organization, policy_id__in=policy_ids
        ).values_list("policy_id", "membership_id", "application_id", "group_id", "group__name")
        for policy_id, membership_id, application_id, group_id, group_name in attachments:
            policy = str(policy_id)
            if group_id is not None:
                reach.group_policies.setdefault(str(group_id), set()).add(policy)
                reach.group_names[str(group_id)] = group_name
            elif membership_id is not None:
                reach.direct.setdefault(("user", str(membership_id)), set()).add(policy)
            else:
                reach.direct.setdefault(("application", str(application_id)), set()).add(policy)
    if reach.group_policies:
        groups = list(reach.group_policies)
        links = [
            ("user", Group.members.through.objects.values_list("group_id", "membership_id")),
            (
                "application",
                Group.applications.through.objects.values_list("group_id", "application_id"),
            ),
        ]
        for kind, rows in links:
            for group_id, pk in rows.filter(group_id__in=groups, group__organization=organization):
                reach.groups_of.setdefault((kind, str(pk)), []).append(str(group_id))
    special = Membership.objects.filter(organization=organization).filter(
        Q(is_owner=True) | ~Q(status=Membership.Status.ACTIVE) | Q(user__is_active=False)
    )
    for pk, is_owner, status, user_active in special.values_list(
        "pk", "is_owner", "status", "user__is_active"
    ):
        if status != Membership.Status.ACTIVE or not user_active:
            reach.inactive.add(str(pk))
        elif is_owner:
            reach.owners.add(str(pk))
    return reach


def _usable(rule: CompiledRule) -> bool:
    """Can this rule's condition hold at all? (One that no longer compiles never does.)"""
    return rule.condition is None or rule.condition.error is None


def _decide_shape(
    rules: Sequence[CompiledRule],
    shape: tuple[frozenset[str], bool, bool],
    question: Question,
    facts: RequestFacts,
) -> _Outcome | None:
    """The outcome for every principal of one shape: the deny rules of its policies
    (`shape[0]`, their ids), whether they hold an unconditional allow, and whether they
    hold a conditional one (of `rules`, the question's candidates). None when nothing
    grants the action. Which allow a principal holds names its path, never its outcome:
    a deny wins over any allow, and any allow over no rule."""
    denies, fixed_allow, conditional_allow = shape
    if not fixed_allow and not conditional_allow:
        return None
    held = [r for r in rules if r.is_guardrail or (r.effect == "deny" and r.policy_id in denies)]
    if fixed_allow:  # one stands for all: whichever matches, the answer is the same
        held.append(next(r for r in rules if r.effect == "allow" and r.condition is None))
    # Unconditional rules, and broken conditions (decided the same whatever the request).
    fixed = [rule for rule in held if rule.condition is None or rule.condition.error]
    unless = tuple(r for r in held if r.effect == "deny" and r.condition and not r.condition.error)
    decision = decide(
        principal=_ANYONE,
        rules=CompiledRuleSet(fixed),
        action=question.action,
        project_id=question.project_id,
        request=facts,
        resource=question.resource,
    )
    if decision.reason == "explicit_deny":
        return _Outcome("blocked", blocked_by=decision.deciding_rule)
    if decision.reason == "explicit_allow":
        return _Outcome("conditional" if unless else "allowed", unless)
    return _Outcome("conditional", unless, conditional_grant=True)


@dataclass
class Question:
    action: str
    project_id: str | None
    resource: ResourceFacts | None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector. Indexing allocates tens of thousands of small
    containers, none in a cycle, and meanwhile the collector would run full passes over
    the whole process's heap: half of the time at 10,000 users, for nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def answer_all(
    organization: Organization, questions: Sequence[Question], *, cached: bool = True
) -> list[WhoCan]:
    """The answers to several questions in one organization, sharing the compile and the
    reads of who the policies reach. `cached=False` compiles afresh and keeps nothing:
    for a state that will be rolled back (a change preview), whose version the next real
    change takes."""
    with _collector_paused():
        return _answers(organization, questions, cached=cached)


def _answers(
    organization: Organization, questions: Sequence[Question], *, cached: bool = True
) -> list[WhoCan]:
    ruleset = (
        _rule_set(organization) if cached else CompiledRuleSet(_organization_rules(organization))
    )
    candidates = [
        ruleset.candidates(q.action, q.project_id, q.resource) if q.action in ACTIONS else ()
        for q in questions
    ]
    relevant = {rule.policy_id for rules in candidates for rule in rules if not rule.is_guardrail}
    reach = _reach(organization, relevant)
    refs = reach.refs()
    interned: dict[frozenset[str], frozenset[str]] = {}
    keys = {ref: interned.setdefault(k, k) for ref in refs for k in (reach.policies_of(ref),)}
    facts = _no_facts()
    answers = []
    for question, rules in zip(questions, candidates, strict=True):
        outcomes: dict[_Ref, _Outcome] = {}
        ids: dict[Status, dict[Kind, list[str]]] = {
            status: {"user": [], "application": []} for status in STATUSES
        }
        allowing = {r.policy_id for r in rules if r.effect == "allow" and r.condition is None}
        maybe = {r.policy_id for r in rules if r.effect == "allow" and r.condition and _usable(r)}
        denying = {r.policy_id for r in rules if r.effect == "deny" and not r.is_guardrail}
        by_set: dict[frozenset[str], _Outcome | None] = {}
        by_shape: dict[tuple[frozenset[str], bool, bool], _Outcome | None] = {}
        suspended = 0
        for ref in refs:
            kind, pk = ref
            if kind == "user" and pk in reach.owners:
                continue
            key = keys[ref]
            if key not in by_set:
                shape = (key & denying, not key.isdisjoint(allowing), not key.isdisjoint(maybe))
                if shape not in by_shape:
                    by_shape[shape] = _decide_shape(rules, shape, question, facts)
                by_set[key] = by_shape[shape]
            outcome = by_set[key]
            if outcome is None:
                continue
            if kind == "user" and pk in reach.inactive:
                suspended += 1
                continue
            outcomes[ref] = outcome
            ids[outcome.status][kind].append(pk)  # type: ignore[index]
        known = question.action in ACTIONS
        for pk in reach.owners if known else ():
            outcomes[("user", pk)] = _OWNER
            ids["owner"]["user"].append(pk)
        counts = {status: sum(map(len, ids[status].values())) for status in STATUSES}
        counts["suspended"] = suspended
        answers.append(
            WhoCan(
                organization,
                question.action,
                question.project_id,
                question.resource,
                counts,
                outcomes,
                ids,
                reach.direct,
                reach.groups_of,
                reach.group_policies,
                reach.group_names,
                keys,
                tuple(rules),
            )
        )
    return answers


def who_can(
    organization: Organization,
    action: str,
    project_id: object = None,
    resource: ResourceFacts | None = None,
) -> WhoCan:
    """Every principal of `organization` allowed `action` (at organization level, in
    project `project_id`, or on `resource`, then in its project), with how; and those a
    policy grants it whom a deny or a guardrail blocks. An unknown action: nobody (the
    evaluator denies it to owners too). The caller checks that the project and resource
    are the organization's, and that the action fits them."""
    if resource is not None:
        project_id = resource.project_id
    question = Question(action, str(project_id) if project_id else None, resource)
    return answer_all(organization, [question])[0]


def who_can_counts(
    organization: Organization, actions: Sequence[str], resource: ResourceFacts
) -> Mapping[str, WhoCan]:
    """`who_can` of several actions on one resource (the resource page), sharing the
    queries: a constant number whatever the number of actions."""
    questions = [Question(a, resource.project_id, resource) for a in actions]
    return dict(zip(actions, answer_all(organization, questions), strict=True))
