"""The bridge between requests and the pure evaluator.

Compiled rule sets are cached in process memory keyed by the organization's
authorization version, which is read with the membership (or the API key) on every
request: a change committed by any process bumps the version, so every process
recompiles on its next request and no process ever answers from revoked rules.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.mfa import is_verified
from audit import events
from audit.services import record, record_access_denied
from iamportal.request import client_ip, client_user_agent
from organizations.models import APIKey, Application, Membership, Organization, Resource
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Decision,
    Principal,
    RequestFacts,
    ResourceFacts,
    decide,
)
from policies.selectors.authorize import (
    PrincipalRef,
    principals_named,
    projects_named,
    resources_named,
)
from policies.selectors.rules import Path, compile_policies, composed, policy_paths_for
from policies.usage import note_decision

# Compiled rules hold compiled CEL programs, which cannot be pickled into Django's cache
# backends; a bounded in-process LRU is enough because every key carries the version:
# `<organization>:<version>:<kind>:<id>`. Compiled policies are shared, not copied: each
# policy is compiled once per version and path ("policy"), a rule set is composed once per
# distinct set of policies and paths ("ruleset") and a principal's entry ("rules") points
# at its set, so memory grows with policies and distinct sets, not principals x rules.
# It also remembers, per version, the principals, projects and resources
# `POST /api/v1/authorize` is asked about. When an organization's version moves, the
# entries of its older versions are dropped at once rather than left for eviction.
# Bounded by entries: at 10,000 members each in 5 random groups of 500 (`seed_scale`),
# every member's rules took 26,000 entries and 120 MB (measured with tracemalloc): each
# member's set distinct, its rules shared with the 6,200 compiled policies.
_CACHE_SIZE = 30_000
_cache: OrderedDict[str, object] = OrderedDict()
_latest: dict[object, int] = {}  # organization pk -> the newest version seen
_cache_lock = threading.Lock()
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def _cached_many(
    organization: Organization,
    kind: str,
    idents: Iterable[K],
    load: Callable[[list[K]], Mapping[K, T]],
) -> dict[K, T]:
    """The entries `kind` of `idents` for the organization's version; `load(missing)` makes
    those not cached (it may leave some out: they are not remembered)."""
    prefix = f"{organization.pk}:{organization.authz_version}:{kind}:"
    found: dict[K, T] = {}
    missing: list[K] = []
    with _cache_lock:
        for ident in idents:
            value = _cache.get(f"{prefix}{ident}")
            if value is None:
                missing.append(ident)
            else:
                _cache.move_to_end(f"{prefix}{ident}")
                found[ident] = value  # type: ignore[assignment]
    if missing:
        loaded = load(missing)
        _store(organization, {f"{prefix}{ident}": value for ident, value in loaded.items()})
        found.update(loaded)
    return found


def _cached(organization: Organization, kind: str, ident: Hashable, make: Callable[[], T]) -> T:
    """One entry of `_cached_many`."""
    return _cached_many(organization, kind, [ident], lambda _: {ident: make()})[ident]


def remembered(organization: Organization, kind: str, make: Callable[[], T]) -> T:
    """What `make` derives from the organization's authorization state (every rule of it,
    say), kept until its authorization version moves."""
    return _cached(organization, kind, "", make)


def _store(organization: Organization, entries: Mapping[str, object]) -> None:
    version = organization.authz_version
    with _cache_lock:
        latest = _latest.get(organization.pk)
        if latest is not None and version < latest:
            return  # read before a change another request has already seen: not kept
        if latest is None or version > latest:
            _latest[organization.pk] = version
            _drop(f"{organization.pk}:", keep=f"{organization.pk}:{version}:")
        _cache.update(entries)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def _drop(prefix: str, keep: str | None = None) -> None:
    """Delete the entries under `prefix`, except those under `keep` (holding the lock)."""
    for key in [k for k in _cache if k.startswith(prefix) and not (keep and k.startswith(keep))]:
        del _cache[key]


def principal_of(subject: Membership | Application) -> Principal:
    """The evaluator's view of a membership (a user in an organization) or an application,
    with its tags (which conditions read as `principal.tags`)."""
    if isinstance(subject, Application):
        return Principal(
            type="application", id=str(subject.pk), label=subject.name, tags=subject.tags
        )
    return Principal(
        type="user",
        id=str(subject.user_id),
        is_owner=subject.is_owner,
        is_active=subject.is_active and subject.user.is_active,
        label=subject.user.email,
        tags=subject.tags,
    )


def bearer_of(api_key: APIKey) -> Membership | Application:
    """The principal an API key acts as: its bearer membership or application, sharing the
    key's organization object (read with the key, so its authorization version is fresh)."""
    bearer: Membership | Application = api_key.bearer_membership or api_key.bearer_application
    bearer.organization = api_key.organization
    return bearer


def request_facts(request: HttpRequest) -> RequestFacts:
    # request.mfa: the session signed in with a second factor (django-otp's verification).
    # An API key request is never MFA, whatever session cookie it may also carry: the
    # API does not read sessions (iamportal.api sets `request.api_key`).
    api_key = getattr(request, "api_key", None)
    return RequestFacts(
        ip=client_ip(request) or "",
        user_agent=client_user_agent(request),
        time=timezone.now(),
        mfa=False if api_key is not None else is_verified(request),
    )


def rules_for(subject: Membership | Application) -> CompiledRuleSet:
    """The compiled rules of a membership or application, reused until the organization's
    authorization version moves; composed from compiled policies shared with every
    principal holding them the same way (`compile_rules_for` gives the same rules)."""
    organization = subject.organization

    def load(_: object) -> dict[object, CompiledRuleSet]:
        paths = policy_paths_for(subject)
        signature = hashlib.blake2b(
            repr(sorted((str(policy), path) for policy, path in paths.items())).encode(),
            digest_size=16,
        ).hexdigest()
        rules = _cached(organization, "ruleset", signature, lambda: _composed(organization, paths))
        return {subject.pk: rules}

    return _cached_many(organization, "rules", [subject.pk], load)[subject.pk]


_GUARDRAIL = "guardrail"


def _composed(organization: Organization, paths: Mapping[object, Path]) -> CompiledRuleSet:
    """The rule set of these policies (and the guardrail), compiling only the policies not
    compiled yet at this version for their path (one query for all of them)."""
    idents = {f"{policy}:{_path_ident(path)}": policy for policy, path in paths.items()}

    def load(missing: list[str]) -> dict[str, tuple[CompiledRule, ...]]:
        wanted = {idents[ident]: paths[idents[ident]] for ident in missing if ident in idents}
        compiled = compile_policies(organization.pk, wanted, guardrail=_GUARDRAIL in missing)
        loaded = {
            ident: tuple(compiled.get(idents[ident], ())) for ident in missing if ident in idents
        }
        if _GUARDRAIL in missing:
            guardrails = [rules for rules in compiled.values() if rules[0].is_guardrail]
            loaded[_GUARDRAIL] = tuple(guardrails[0]) if guardrails else ()
        return loaded

    policies = _cached_many(organization, "policy", [*idents, _GUARDRAIL], load)
    return composed(policies.values())


def _path_ident(path: Path) -> str:
    groups, direct = path
    if not groups:
        return "direct" if direct else "-"
    # Group names are free text: a digest keeps the key short and unambiguous.
    digest = hashlib.blake2b(repr(path).encode(), digest_size=8).hexdigest()
    return f"{'direct+' if direct else ''}{digest}"


def principals_to_decide(
    organization: Organization, refs: Iterable[PrincipalRef]
) -> dict[PrincipalRef, Membership | Application]:
    """`principals_named`, remembered until the organization's authorization version moves
    (a membership's status or role, an account's deactivation and a principal's removal
    all move it), so a service asking about the same principals again reads none of them.
    The objects are shared between requests: for deciding only, never for a write."""
    # Unknown ones are not remembered: a principal may join without a new version.
    return _cached_many(
        organization,
        "principal",
        set(refs),
        lambda missing: principals_named(organization, missing),
    )


def projects_to_decide(organization: Organization, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """`projects_named`, remembering the projects found until the authorization version
    moves (deleting a project moves it; a new one is simply looked up)."""
    found = _cached_many(
        organization,
        "project",
        set(ids),
        lambda missing: dict.fromkeys(projects_named(organization, missing), True),
    )
    return set(found)


def resources_to_decide(
    organization: Organization, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, ResourceFacts]:
    """The facts of the organization's resources among `ids`, remembered until the
    authorization version moves (retagging, moving and deleting a resource move it; a new
    one is simply looked up)."""
    return _cached_many(
        organization,
        "resource",
        set(ids),
        lambda missing: {
            resource.pk: resource_facts(resource)
            for resource in resources_named(organization, missing)
        },
    )


def forget_organization(organization_id: object) -> None:
    """Drop everything cached for the organization, for work rolled back after compiling."""
    with _cache_lock:
        _drop(f"{organization_id}:")


def decider_for(
    subject: Membership | Application,
) -> Callable[..., Decision]:
    """`decide(action, project_id, facts, resource=None)` for one membership or
    application, its principal and cached compiled rules looked up once: a batch of
    questions about one principal pays for them once."""
    principal = principal_of(subject)
    # Owners and suspended principals are decided without compiling any rule.
    rules = rules_for(subject) if principal.is_active and not principal.is_owner else None
    rules = rules or CompiledRuleSet.empty()

    def decide_one(
        action: str,
        project_id: object,
        facts: RequestFacts,
        resource: ResourceFacts | None = None,
    ) -> Decision:
        return decide(
            principal=principal,
            rules=rules,
            action=action,
            project_id=str(project_id) if project_id else None,
            request=facts,
            resource=resource,
        )

    return decide_one


def decide_for(
    subject: Membership | Application,
    action: str,
    project_id: object,
    facts: RequestFacts,
    resource: ResourceFacts | None = None,
) -> Decision:
    """Decide `action` (in a project, or on a `resource`) for a membership or application
    with its cached compiled rules: the one path of the console's guards, the API's guards
    and `POST /api/v1/authorize`."""
    return decider_for(subject)(action, project_id, facts, resource)


def resource_facts(resource: Resource) -> ResourceFacts:
    """What the evaluator knows of a registered resource."""
    return ResourceFacts.of(
        type=resource.type, id=resource.pk, project_id=resource.project_id, tags=resource.tags
    )


def subject_of(request: HttpRequest) -> Membership | Application | None:
    """Who the request acts as: an API key's bearer (`request.principal`), else the
    guard's membership; None outside an organization."""
    return getattr(request, "principal", None) or getattr(request, "membership", None)


# ------------------------------------------------------------------------- view as
# An IAM administrator may open an organization's console "as" another principal,
# read-only (policies.views.view_as). The session keeps the target per organization;
# while it is set, every decision of `authorize` in that organization is the target's AND
# the viewer's own, so the console never shows the viewer more than they may read
# themself, and no write passes. The API (`request.api_key`) never reads it.

VIEW_AS_SESSION_KEY = "iam_view_as"  # {organization id: {"kind", "id", "label"}}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
VIEW_AS_PERMISSION = "iam:simulator:use"  # its holders may already ask any principal's decisions


@dataclass(frozen=True)
class ViewingAs:
    """The principal a request views its organization as (`request.view_as`)."""

    target: Membership | Application
    kind: str  # "user" or "application"
    label: str


@dataclass(frozen=True, slots=True)
class ViewAsDecision(Decision):
    """A decision while viewing as someone: `refused_by` says who refused (`target`,
    `viewer`, `both`, or `read_only` for a write), empty when allowed."""

    refused_by: str = ""
    viewing_as: str = ""


def view_as_label(target: Membership | Application) -> str:
    return target.name if isinstance(target, Application) else target.user.email


def view_as_entry(request: HttpRequest, organization_id: object) -> dict[str, str] | None:
    return request.session.get(VIEW_AS_SESSION_KEY, {}).get(str(organization_id))


def set_view_as(
    request: HttpRequest, organization_id: object, entry: dict[str, str] | None
) -> None:
    """Start (`entry`) or end (None) viewing the organization as someone, in the session."""
    viewing = dict(request.session.get(VIEW_AS_SESSION_KEY, {}))
    if entry is None:
        viewing.pop(str(organization_id), None)
    else:
        viewing[str(organization_id)] = entry
    request.session[VIEW_AS_SESSION_KEY] = viewing
    request.__dict__.pop("view_as", None)


def view_as_target(
    organization: Organization, entry: Mapping[str, str]
) -> Membership | Application | None:
    """The session's target, read again (one query), sharing the organization object."""
    model = Membership if entry.get("kind") == "user" else Application
    queryset = model.objects.select_related("user") if model is Membership else model.objects
    target = queryset.filter(organization=organization, pk=entry.get("id")).first()
    if target is not None:
        target.organization = organization
    return target


def viewing_as(request: HttpRequest) -> ViewingAs | None:
    """Whom the request's viewer views its organization as (memoised as `request.view_as`),
    checked on each request: it ends, with a message, once the target is suspended or
    removed or the viewer no longer holds `VIEW_AS_PERMISSION`."""
    if "view_as" in request.__dict__:
        return request.view_as  # type: ignore[attr-defined]
    request.view_as = None  # type: ignore[attr-defined]
    organization = getattr(request, "organization", None)
    viewer = getattr(request, "membership", None)
    session = getattr(request, "session", None)
    if (
        getattr(request, "api_key", None) is not None
        or organization is None
        or not isinstance(viewer, Membership)
        or session is None
        or VIEW_AS_SESSION_KEY not in session
    ):
        return None
    entry = view_as_entry(request, organization.pk)
    if not entry:
        return None
    target = view_as_target(organization, entry)
    label = view_as_label(target) if target is not None else entry.get("label", "")
    if target is None:
        why = f"{label} is no longer in {organization.name}"
    elif not principal_of(target).is_active:
        why = f"{label} is suspended"
    elif not decide_for(viewer, VIEW_AS_PERMISSION, None, request_facts(request)).allowed:
        why = f"you no longer hold {VIEW_AS_PERMISSION}"
    else:
        request.view_as = ViewingAs(target, entry["kind"], label)  # type: ignore[attr-defined]
        return request.view_as  # type: ignore[attr-defined]
    set_view_as(request, organization.pk, None)
    request.view_as = None  # type: ignore[attr-defined]
    with transaction.atomic():
        record(
            action=events.VIEW_AS_STOPPED,
            organization=organization,
            actor=request.user,
            target=target,
            target_label=label,
            data={"reason": why},
            request=request,
        )
    messages.warning(request, f"Viewing as {label} has ended: {why}.")
    return None


def _values(decision: Decision) -> dict[str, Any]:
    return {field.name: getattr(decision, field.name) for field in fields(Decision)}


def read_only_decision(viewing: ViewingAs, action: str) -> ViewAsDecision:
    """The refusal of a write (`action`) while viewing as someone."""
    explanation = f"denied: you are viewing as {viewing.label}, read-only"
    refused = Decision(False, "explicit_deny", action, None, explanation)
    return ViewAsDecision(**_values(refused), refused_by="read_only", viewing_as=viewing.label)


def _viewed_decision(
    request: HttpRequest, viewing: ViewingAs, decide_as: Callable[[Any], Decision], action: str
) -> ViewAsDecision:
    """The target's decision intersected with the viewer's own; any write refused. An owner
    target allows everything (the viewer's own decisions remain), an owner viewer allows
    everything (the target's remain)."""
    label = viewing.label
    if request.method not in SAFE_METHODS:
        return read_only_decision(viewing, action)
    own = decide_as(subject_of(request))
    theirs = decide_as(viewing.target)
    who_refused = {(False, False): "both", (True, False): "target", (False, True): "viewer"}
    # A refusal of the target's is what they would see; else the viewer's own.
    chosen = own if theirs.allowed and not own.allowed else theirs
    return ViewAsDecision(
        **_values(chosen),
        refused_by=who_refused.get((own.allowed, theirs.allowed), ""),
        viewing_as=label,
    )


def authorize(
    request: HttpRequest, action: str, project_id: object = None, resource: Resource | None = None
) -> Decision:
    """Decide `action` (in a project, or on a registered `resource`) for the request's
    membership (or, in the API, the key's bearer, `request.principal`); decisions are
    memoised per request. While viewing as someone, it is their decision and the viewer's
    (`ViewAsDecision`)."""
    memo: dict[tuple[str, str, str], Decision] = request.__dict__.setdefault("_iam_decisions", {})
    memo_key = (action, str(project_id or ""), str(resource.pk) if resource is not None else "")
    if memo_key not in memo:
        subject = subject_of(request)
        assert subject is not None, "authorize() needs a guarded request"
        facts = request_facts(request)
        about = resource_facts(resource) if resource is not None else None

        def decide_as(who: Membership | Application) -> Decision:
            return decide_for(who, action, project_id, facts, about)

        viewing = viewing_as(request)
        if viewing is None:
            memo[memo_key] = decide_as(subject)
            note_decision(subject, memo[memo_key])  # usage (#16); none while viewing as
        else:
            memo[memo_key] = _viewed_decision(request, viewing, decide_as, action)
    return memo[memo_key]


def authorize_on_key(request: HttpRequest, api_key: APIKey, action: str) -> Decision | None:
    """`action` on one API key: None when allowed; else the denial. A key's own bearer
    passes when the only reason to refuse would be that no policy grants `action`."""
    decision = authorize(request, action)
    # While viewing as someone, their keys are the ones they would see as their own; the
    # viewer must still be allowed the action themself.
    viewing = getattr(request, "view_as", None)
    subject = viewing.target if viewing is not None else subject_of(request)
    is_bearer = (
        isinstance(subject, Membership) and api_key.bearer_membership_id == subject.pk
    ) or (isinstance(subject, Application) and api_key.bearer_application_id == subject.pk)
    only_target_refused = getattr(decision, "refused_by", "") in ("", "target")
    if decision.allowed or (
        is_bearer and decision.reason == "implicit_deny" and only_target_refused
    ):
        return None
    return decision


def can(request: HttpRequest, action: str, project_id: object = None) -> bool:
    if subject_of(request) is None:
        return False
    return authorize(request, action, project_id).allowed


def deny_response(request: HttpRequest, decision: Decision) -> HttpResponse:
    """The 403 page naming the missing permission; the denial goes to the audit trail."""
    # Rate-limited per principal and permission: a loop cannot flood the trail.
    record_access_denied(
        organization=request.organization,  # type: ignore[attr-defined]
        actor=request.user,
        permission=decision.action,
        data={"action": decision.action, "explanation": decision.explanation},
        request=request,
    )
    if isinstance(decision, ViewAsDecision):
        context = {"decision": decision, "viewing": getattr(request, "view_as", None)}
        return render(request, "policies/view_as_denied.html", context, status=403)
    membership = getattr(request, "membership", None)
    # A member no policy grants anything (typically just invited with no role or group)
    # gets told so, and how to leave, rather than a list of missing permissions.
    nothing_granted = (
        membership is not None
        and membership.is_active
        and not membership.is_owner
        and not any(rule.effect == "allow" for rule in rules_for(membership))
    )
    context = {"decision": decision, "nothing_granted": nothing_granted}
    return render(request, "403.html", context, status=403)
