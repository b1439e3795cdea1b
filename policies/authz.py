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
from typing import TypeVar

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.mfa import is_verified
from audit.services import record_access_denied
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


def authorize(
    request: HttpRequest, action: str, project_id: object = None, resource: Resource | None = None
) -> Decision:
    """Decide `action` (in a project, or on a registered `resource`) for the request's
    membership (or, in the API, the key's bearer, `request.principal`); decisions are
    memoised per request."""
    memo: dict[tuple[str, str, str], Decision] = request.__dict__.setdefault("_iam_decisions", {})
    memo_key = (action, str(project_id or ""), str(resource.pk) if resource is not None else "")
    if memo_key not in memo:
        subject = subject_of(request)
        assert subject is not None, "authorize() needs a guarded request"
        facts = resource_facts(resource) if resource is not None else None
        memo[memo_key] = decide_for(subject, action, project_id, request_facts(request), facts)
    return memo[memo_key]


def authorize_on_key(request: HttpRequest, api_key: APIKey, action: str) -> Decision | None:
    """`action` on one API key: None when allowed; else the denial. A key's own bearer
    passes when the only reason to refuse would be that no policy grants `action`."""
    decision = authorize(request, action)
    subject = subject_of(request)
    is_bearer = (
        isinstance(subject, Membership) and api_key.bearer_membership_id == subject.pk
    ) or (isinstance(subject, Application) and api_key.bearer_application_id == subject.pk)
    if decision.allowed or (is_bearer and decision.reason == "implicit_deny"):
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
