"""The bridge between requests and the pure evaluator.

Compiled rule sets are cached in process memory keyed by the organization's
authorization version, which is read with the membership (or the API key) on every
request: a change committed by any process bumps the version, so every process
recompiles on its next request and no process ever answers from revoked rules.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.mfa import is_verified
from audit.services import record_access_denied
from iamportal.request import client_ip, client_user_agent
from organizations.models import APIKey, Application, Membership, Organization, Resource
from policies.evaluator import (
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
from policies.selectors.rules import compile_rules_for

# Compiled rules hold compiled CEL programs, which cannot be pickled into Django's cache
# backends; a bounded in-process LRU is enough because every key carries the version.
# It also remembers, per version, the principals and projects `POST /api/v1/authorize`
# is asked about.
_CACHE_SIZE = 10_000
_cache: OrderedDict[str, object] = OrderedDict()
T = TypeVar("T")
_cache_lock = threading.Lock()


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


def _cached(key: str, make: Callable[[], T]) -> T:
    """The LRU entry `key` (which names an authorization version), made on a miss."""
    with _cache_lock:
        value = _cache.get(key)
        if value is not None:
            _cache.move_to_end(key)
            return value  # type: ignore[return-value]
    value = make()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def rules_for(subject: Membership | Application) -> CompiledRuleSet:
    """The compiled rules of a membership or application, reused until the organization's
    authorization version moves."""
    organization = subject.organization
    key = f"rules:{organization.pk}:{organization.authz_version}:{subject.pk}"
    return _cached(key, lambda: compile_rules_for(subject))


def principals_to_decide(
    organization: Organization, refs: Iterable[PrincipalRef]
) -> dict[PrincipalRef, Membership | Application]:
    """`principals_named`, remembered until the organization's authorization version moves
    (a membership's status or role, an account's deactivation and a principal's removal
    all move it), so a service asking about the same principals again reads none of them.
    The objects are shared between requests: for deciding only, never for a write."""
    prefix = f"principal:{organization.pk}:{organization.authz_version}:"
    found: dict[PrincipalRef, Membership | Application] = {}
    missing = []
    with _cache_lock:
        for ref in set(refs):
            subject = _cache.get(f"{prefix}{ref[0]}:{ref[1]}")
            if subject is None:
                missing.append(ref)
            else:
                found[ref] = subject  # type: ignore[assignment]
    if missing:
        # Unknown ones are not remembered: a principal may join without a new version.
        loaded = principals_named(organization, missing)
        for ref, subject in loaded.items():
            _cached(f"{prefix}{ref[0]}:{ref[1]}", lambda subject=subject: subject)  # type: ignore[misc]
        found.update(loaded)
    return found


def projects_to_decide(organization: Organization, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """`projects_named`, remembering the projects found until the authorization version
    moves (deleting a project moves it; a new one is simply looked up)."""
    prefix = f"project:{organization.pk}:{organization.authz_version}:"
    wanted = set(ids)
    with _cache_lock:
        known = {pk for pk in wanted if f"{prefix}{pk}" in _cache}
    if known != wanted:
        for pk in projects_named(organization, wanted - known):
            _cached(f"{prefix}{pk}", lambda: True)
            known.add(pk)
    return known


def resources_to_decide(
    organization: Organization, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, ResourceFacts]:
    """The facts of the organization's resources among `ids`, remembered until the
    authorization version moves (retagging, moving and deleting a resource move it; a new
    one is simply looked up)."""
    prefix = f"resource:{organization.pk}:{organization.authz_version}:"
    wanted = set(ids)
    found: dict[uuid.UUID, ResourceFacts] = {}
    with _cache_lock:
        for pk in wanted:
            facts = _cache.get(f"{prefix}{pk}")
            if facts is not None:
                found[pk] = facts  # type: ignore[assignment]
    missing = wanted - found.keys()
    if missing:
        for resource in resources_named(organization, missing):
            facts = resource_facts(resource)
            found[resource.pk] = _cached(f"{prefix}{resource.pk}", lambda facts=facts: facts)  # type: ignore[misc]
    return found


def forget_organization(organization_id: object) -> None:
    """Drop the organization's cached rule sets, for work rolled back after compiling."""
    prefix = f"rules:{organization_id}:"
    with _cache_lock:
        for key in [key for key in _cache if key.startswith(prefix)]:
            del _cache[key]


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
