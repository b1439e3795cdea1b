"""Who can do an action: every principal the organization's policies allow it, and how.

Indexed by action, never "decide for every principal" in a loop over the database:

1. the rules of every policy attached in the organization, and of its guardrail, are
   compiled once (`compile_policy_rules`, the evaluator's compile) and only those naming
   the action with a scope that can match the question are kept (`candidates`);
2. the principals those rules' policies reach, directly or through their groups, are read
   as ids, in a constant number of queries (attachments, group links, owners and
   inactive members);
3. principals are grouped by the set of relevant policies reaching them (their key,
   `_Crowd`), once for all the questions of a batch; each question is decided once per
   key, each key reduced to its shape (its deny rules; whether it holds an unconditional
   allow; a conditional one), and the evaluator decides once per shape, on a rule set
   of those denies, the guardrails and one allow (any allow decides alike: only the
   path, found for the rows shown, names it). Conditions are never evaluated against a
   made-up request: the decision is taken on the unconditional rules, and conditional
   allows (or denies) are reported as "allowed if …" (or "… unless …"). A condition
   that no longer compiles is decided as the evaluator always decides it (an allow
   never, a deny always).

Owners are allowed ("owner"). Suspended members (and deactivated accounts) are left out
of the rows, and counted (`counts["suspended"]`): the evaluator denies them everything.

A change preview (policies.preview) compares answers before and after a change by key
(`compared`); for a change of rules only, both sides share one read of whom the policies
reach, and after it only the keys holding a changed policy are decided again
(`answer_rule_change`).

Labels (email, application name) are read only for the rows shown: a page costs a
constant number of queries whatever the organization's size (7 without a search, 8 with
one), and memory holds ids. At 10,000 users a page takes about 110 ms (p95 under 250 ms)
on PostgreSQL: benchmarks/bench_who_can.py.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import BooleanField, F, Q, QuerySet, TextField, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
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
# How a principal answers every question of a batch: as an owner, as a suspended member
# (never), or as the set of relevant policies it holds (its key).
_Class = frozenset[str] | str
_OWNER_CLASS = "owner"
_SUSPENDED_CLASS = "suspended"
_NO_POLICY: frozenset[str] = frozenset()

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
    _crowd: _Crowd = field(repr=False)
    # The outcome for each key of the crowd granted the action (absent: nothing grants it).
    _decided: dict[frozenset[str], _Outcome] = field(repr=False)
    _rules: tuple[CompiledRule, ...] = field(repr=False)
    # After a change of some policies' rules (`answer_rule_change`): the keys decided
    # again, the only ones whose outcome may differ from the answer before it.
    _again: set[frozenset[str]] | None = field(default=None, repr=False)

    def outcome_of(self, ref: _Ref) -> _Outcome | None:
        """How principal `ref` holds the action (None: it does not, nor is it blocked)."""
        return self._outcome_of_class(self._crowd.class_of(ref))

    def _outcome_of_class(self, cls: _Class) -> _Outcome | None:
        if cls == _OWNER_CLASS:
            return _OWNER if self.action in ACTIONS else None
        if cls == _SUSPENDED_CLASS:
            return None
        return self._decided.get(cls)  # type: ignore[call-overload]

    @cached_property
    def _ids(self) -> dict[Status, dict[Kind, list[str]]]:
        """The ids of the principals of each status, by kind: read for the rows only."""
        ids: dict[Status, dict[Kind, list[str]]] = {
            status: {"user": [], "application": []} for status in STATUSES
        }
        for key, refs in self._crowd.active.items():
            outcome = self._decided.get(key)
            if outcome is not None:
                by_kind = ids[outcome.status]
                for kind, pk in refs:
                    by_kind[kind].append(pk)  # type: ignore[index]
        if self.action in ACTIONS:
            ids["owner"]["user"] = list(self._crowd.reach.owners)
        return ids

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
        outcome = self.outcome_of(ref)
        assert outcome is not None, "a row of the answer"
        if outcome.status == "owner":
            return WhoCanRow(kind, pk, label, name, "owner")
        reach = self._crowd.reach
        direct = reach.direct.get(ref, set())
        groups = reach.groups_of.get(ref, ())
        held = self._crowd.keys.get(ref, frozenset())
        allows = [r for r in self._rules if r.effect == "allow" and r.policy_id in held]
        # The unconditional allows when it holds one (those decide), else the conditional.
        granting = [r for r in allows if r.condition is None] or [r for r in allows if _usable(r)]
        paths = []
        for rule in granting:
            through = sorted(
                reach.group_names.get(g, "")
                for g in groups
                if rule.policy_id in reach.group_policies.get(g, ())
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

    def refs(self) -> set[_Ref]:
        return self.direct.keys() | self.groups_of.keys()


def _ids_read(queryset: QuerySet[Any], *columns: str) -> list[Any]:
    """UUID `columns` for `values_list`, read as text on PostgreSQL (as `str(uuid)` writes
    them): tens of thousands of group links would each cost a UUID object and its
    formatting. Elsewhere as stored, for the caller's `str()`."""
    if connections[queryset.db].vendor != "postgresql":
        return list(columns)
    return [Cast(column, TextField()) for column in columns]


def _reach(organization: Organization, policy_ids: set[str]) -> _Reach:
    """Attachments of `policy_ids` in the organization, direct and through groups, and
    the organization's owners and inactive members: at most four queries."""
    reach = _Reach()
    if policy_ids:
        attachments = PolicyAttachment.objects.filter(
            organization=organization, policy_id__in=policy_ids
        )
        attachments = attachments.values_list(
            *_ids_read(attachments, "policy_id", "membership_id", "application_id", "group_id"),
            "group__name",
        )
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
            ("user", Group.members.through.objects.all(), "membership_id"),
            ("application", Group.applications.through.objects.all(), "application_id"),
        ]
        for kind, rows, column in links:
            rows = rows.filter(group_id__in=groups, group__organization=organization)
            for group_id, pk in rows.values_list(*_ids_read(rows, "group_id", column)):
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


@dataclass
class _Crowd:
    """Whom the relevant policies reach, by the set of them each principal holds (its
    key): principals of one key answer every question alike, so a question is decided
    once per key, never once per principal."""

    reach: _Reach
    keys: dict[_Ref, frozenset[str]] = field(default_factory=dict)
    # Owners and suspended members left out (counted) of the keys' principals.
    active: dict[frozenset[str], list[_Ref]] = field(default_factory=dict)
    suspended: dict[frozenset[str], int] = field(default_factory=dict)

    def class_of(self, ref: _Ref) -> _Class:
        """How `ref` answers: as an owner, as a suspended member, or as its key."""
        kind, pk = ref
        if kind == "user" and pk in self.reach.owners:
            return _OWNER_CLASS
        if kind == "user" and pk in self.reach.inactive:
            return _SUSPENDED_CLASS
        return self.keys.get(ref, _NO_POLICY)

    def refs(self) -> set[_Ref]:
        return self.keys.keys() | {("user", pk) for pk in self.reach.owners}

    @cached_property
    def holding(self) -> dict[str, list[frozenset[str]]]:
        """The keys (of active or suspended principals) holding each policy."""
        holding: dict[str, list[frozenset[str]]] = {}
        for key in self.active.keys() | self.suspended.keys():
            for policy in key:
                holding.setdefault(policy, []).append(key)
        return holding

    def holding_any(self, policies: Iterable[str]) -> set[frozenset[str]]:
        holding = self.holding
        return set().union(*(holding.get(policy, ()) for policy in policies))


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
    organization: Organization,
    questions: Sequence[Question],
    *,
    ruleset: CompiledRuleSet | None = None,
) -> list[WhoCan]:
    """The answers to several questions in one organization, sharing the compile and the
    reads of who the policies reach. `ruleset`: the rules to answer on rather than the
    organization's as saved (a change preview's, `recompiled`)."""
    with _collector_paused():
        if ruleset is None:
            ruleset = _rule_set(organization)
        candidates = _candidates(ruleset, questions)
        crowd = _crowd(_reach(organization, _relevant(candidates)))
        return [
            _answer(organization, question, rules, crowd, _decide(crowd, question, rules))
            for question, rules in zip(questions, candidates, strict=True)
        ]


def saved_rules(organization: Organization) -> CompiledRuleSet:
    """The organization's rule set as saved (cached per authorization version): what a
    change preview compares with, taken before the change is made."""
    with _collector_paused():  # a cold compile allocates as much as indexing
        return _rule_set(organization)


def recompiled(saved: CompiledRuleSet, policy_ids: Iterable[str]) -> CompiledRuleSet:
    """`saved` with the rules of policies `policy_ids` compiled again, as the database now
    stands: the organization's rule set after a change of these policies' rules or
    attachments only, compiled once (never cached: it may be rolled back). A policy no
    longer attached anywhere keeps its rules here, which then reach nobody."""
    changed = set(policy_ids)
    kept = [rule for rule in saved.rules if rule.policy_id not in changed]
    # The order of a full compile: by policy name and id, then position.
    return CompiledRuleSet(sorted([*kept, *compile_policy_rules(changed)], key=_compile_order))


def answer_rule_change(
    organization: Organization,
    questions: Sequence[Question],
    saved: CompiledRuleSet,
    policy_ids: Iterable[str],
) -> tuple[list[WhoCan], list[WhoCan]]:
    """The answers before and after a change of the rules of policies `policy_ids` (added,
    edited or removed; a guardrail's included), inside the change's transaction; `saved`
    is `saved_rules` taken before it. Such a change never moves whom a policy reaches, so
    that is read once for both sides; only these policies' rules are compiled again
    (`recompiled`); and after it only the principals holding one of them are decided
    again (all of them for a guardrail's rule, which binds everyone)."""
    changed = frozenset(policy_ids)
    with _collector_paused():
        ruleset = recompiled(saved, changed)
        guardrail = any(
            rule.is_guardrail
            for rule in (*ruleset.rules, *saved.rules)
            if rule.policy_id in changed
        )
        was_rules, now_rules = _candidates(saved, questions), _candidates(ruleset, questions)
        crowd = _crowd(_reach(organization, _relevant(was_rules) | _relevant(now_rules)))
        again = None if guardrail else crowd.holding_any(changed)
        before, after = [], []
        for question, old, new in zip(questions, was_rules, now_rules, strict=True):
            was = _answer(organization, question, old, crowd, _decide(crowd, question, old))
            if again is None:
                now = _answer(organization, question, new, crowd, _decide(crowd, question, new))
            else:
                decided = _decide(crowd, question, new, (was._decided, again))
                now = _answer(organization, question, new, crowd, decided, (was, again))
            before.append(was)
            after.append(now)
    return before, after


@dataclass(frozen=True, slots=True)
class Bunch:
    """`size` principals of one status before a change and one after (None: neither
    allowed nor blocked); named (`refs`) only when their status moved. Principals neither
    answer names may be left out."""

    before: Status | None
    after: Status | None
    size: int
    refs: list[_Ref]


def compared(before: Sequence[WhoCan], after: Sequence[WhoCan]) -> Iterator[list[Bunch]]:
    """Each question's answers before and after a change side by side, in bunches of
    principals. Drawn from the keys when both sides share whom the policies reach
    (`answer_rule_change`), else from each principal's pair of classes, paired once per
    batch."""
    drawn: dict[tuple[int, int], list[tuple[_Class, _Class, list[_Ref]]]] = {}
    for was, now in zip(before, after, strict=True):
        if was._crowd is now._crowd:
            yield _compare_keys(was, now)
            continue
        pair = (id(was._crowd), id(now._crowd))
        if pair not in drawn:
            drawn[pair] = _pairs(was._crowd, now._crowd)
        yield _tally(
            (_status(was._outcome_of_class(old)), _status(now._outcome_of_class(new)), refs)
            for old, new, refs in drawn[pair]
        )


def _compare_keys(was: WhoCan, now: WhoCan) -> list[Bunch]:
    """Both answers over one crowd: the principals some answer names, by key; only the
    keys decided again move, when `now` says which (`_again`)."""
    crowd, old_of, new_of = was._crowd, was._decided, now._decided
    alike: dict[Status | None, int] = {status: was.counts[status] for status in STATUSES}
    moved: dict[tuple[Status | None, Status | None], list[_Ref]] = {}
    keys = now._again if now._again is not None else old_of.keys() | new_of.keys()
    for key in keys:
        old, new = _status(old_of.get(key)), _status(new_of.get(key))
        if old != new and (refs := crowd.active.get(key)):
            if old is not None:
                alike[old] -= len(refs)
            moved.setdefault((old, new), []).extend(refs)
    return [
        *(Bunch(status, status, size, []) for status, size in alike.items() if size),
        *(Bunch(old, new, len(refs), refs) for (old, new), refs in moved.items()),
    ]


def _tally(pairs: Iterable[tuple[Status | None, Status | None, list[_Ref]]]) -> list[Bunch]:
    alike: dict[Status | None, int] = {}
    moved: dict[tuple[Status | None, Status | None], list[_Ref]] = {}
    for old, new, refs in pairs:
        if old == new:
            alike[old] = alike.get(old, 0) + len(refs)
        else:
            moved.setdefault((old, new), []).extend(refs)
    return [
        *(Bunch(status, status, size, []) for status, size in alike.items()),
        *(Bunch(old, new, len(refs), refs) for (old, new), refs in moved.items()),
    ]


def _status(outcome: _Outcome | None) -> Status | None:
    return outcome.status if outcome is not None else None


def _pairs(was: _Crowd, now: _Crowd) -> list[tuple[_Class, _Class, list[_Ref]]]:
    """The principals of either crowd by their class in each."""
    pairs: dict[tuple[_Class, _Class], list[_Ref]] = {}
    for ref in was.refs() | now.refs():
        pairs.setdefault((was.class_of(ref), now.class_of(ref)), []).append(ref)
    return [(old, new, refs) for (old, new), refs in pairs.items()]


def _compile_order(rule: CompiledRule) -> tuple[str, str, int]:
    return rule.policy_name, rule.policy_id, rule.rule_index


def _candidates(
    ruleset: CompiledRuleSet, questions: Sequence[Question]
) -> list[tuple[CompiledRule, ...]]:
    return [
        ruleset.candidates(q.action, q.project_id, q.resource) if q.action in ACTIONS else ()
        for q in questions
    ]


def _relevant(candidates: Iterable[Sequence[CompiledRule]]) -> set[str]:
    return {rule.policy_id for rules in candidates for rule in rules if not rule.is_guardrail}


def _crowd(reach: _Reach) -> _Crowd:
    """Whom `reach` reaches, grouped by key (one pass over the principals)."""
    crowd = _Crowd(reach)
    interned: dict[frozenset[str], frozenset[str]] = {}
    # The policies each combination of groups brings: most principals hold theirs only
    # through groups, and thousands share a combination.
    through: dict[tuple[str, ...], frozenset[str]] = {}
    for ref in reach.refs():
        groups = tuple(reach.groups_of.get(ref, ()))
        key = through.get(groups)
        if key is None:
            brought = frozenset().union(*(reach.group_policies[g] for g in groups))
            key = through[groups] = interned.setdefault(brought, brought)
        if direct := reach.direct.get(ref):
            held = key | direct
            key = interned.setdefault(held, held)
        crowd.keys[ref] = key
        kind, pk = ref
        if kind == "user" and pk in reach.owners:
            continue
        if kind == "user" and pk in reach.inactive:
            crowd.suspended[key] = crowd.suspended.get(key, 0) + 1
        else:
            crowd.active.setdefault(key, []).append(ref)
    return crowd


def _decide(
    crowd: _Crowd,
    question: Question,
    rules: Sequence[CompiledRule],
    kept_from: tuple[dict[frozenset[str], _Outcome], set[frozenset[str]]] | None = None,
) -> dict[frozenset[str], _Outcome]:
    """The outcome for each key of `crowd` that a rule grants the action (absent: none
    does), decided once per shape, the keys found by policy (`_Crowd.holding`).
    `kept_from`: (the outcomes before a change of the rules of some policies only, the
    keys holding one of them): the other keys keep their outcome, as nothing they hold
    has changed."""
    allowing = {r.policy_id for r in rules if r.effect == "allow" and r.condition is None}
    maybe = {r.policy_id for r in rules if r.effect == "allow" and r.condition and _usable(r)}
    denying = {r.policy_id for r in rules if r.effect == "deny" and not r.is_guardrail}
    fixed, granted = crowd.holding_any(allowing), crowd.holding_any(allowing | maybe)
    decided: dict[frozenset[str], _Outcome] = {}
    if kept_from is not None:
        earlier, again = kept_from
        decided = dict(earlier)
        for key in again:
            decided.pop(key, None)
        granted &= again
    facts = _no_facts()
    by_shape: dict[tuple[frozenset[str], bool, bool], _Outcome | None] = {}

    def outcome(shape: tuple[frozenset[str], bool, bool]) -> _Outcome | None:
        if shape not in by_shape:
            by_shape[shape] = _decide_shape(rules, shape, question, facts)
        return by_shape[shape]

    denied = granted & crowd.holding_any(denying)
    # Without a deny of the question's, two shapes at most (a conditional allow beside an
    # unconditional one changes nothing).
    for keys, shape in (
        ((granted - denied) & fixed, (_NO_POLICY, True, False)),
        (granted - denied - fixed, (_NO_POLICY, False, True)),
    ):
        if keys and (found := outcome(shape)) is not None:
            decided.update(dict.fromkeys(keys, found))
    for key in denied:
        has_fixed = key in fixed
        if (found := outcome((key & denying, has_fixed, not has_fixed))) is not None:
            decided[key] = found
    return decided


def _answer(
    organization: Organization,
    question: Question,
    rules: Sequence[CompiledRule],
    crowd: _Crowd,
    decided: dict[frozenset[str], _Outcome],
    since: tuple[WhoCan, set[frozenset[str]]] | None = None,
) -> WhoCan:
    """The answer of `decided`; `since`: (the answer before a change, the keys decided
    again since): the counts are those before, moved by these keys only."""
    if since is None:
        counts = dict.fromkeys(STATUSES, 0)
        counts["owner"] = len(crowd.reach.owners) if question.action in ACTIONS else 0
        counts["suspended"] = 0
        changes = [(decided, 1, decided.keys())]
    else:
        was, again = since
        counts = dict(was.counts)
        changes = [(was._decided, -1, again), (decided, 1, again)]
    for outcomes, sign, keys in changes:
        for key in keys:
            if (outcome := outcomes.get(key)) is not None:
                counts[outcome.status] += sign * len(crowd.active.get(key, ()))
                counts["suspended"] += sign * crowd.suspended.get(key, 0)
    return WhoCan(
        organization,
        question.action,
        question.project_id,
        question.resource,
        counts,
        crowd,
        decided,
        tuple(rules),
        since[1] if since is not None else None,
    )


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
