"""The delegation ceiling: nobody grants more than they hold (IBM Cloud's rule; AWS
reaches it with permission boundaries).

A change that can widen anyone's access (attaching a policy, joining a group, adding or
editing an allow rule of an attached policy, removing a deny, a key for an application,
an invitation with a role or groups) is described by the compiled rules it takes away
from its principals (`before`) and gives them (`after`). `widening` turns that into the
grants it can add: every (action, where) that an allow of `after` covers and no allow of
`before` already covered with no stricter condition, plus every (action, where) that a
deny of `before` covered and `after` no longer denies. `where` is the organization, all
projects, a project, or one chosen resource (#14), which its project or all projects
also cover; the author is then asked about that resource (its type, project and tags).
The service then calls `require_within_rights` before it writes: each grant must be
allowed to the author by the evaluator, with the author's rules as they stand before the
change and the facts of their current request (IP, user agent, time, MFA). Owners are
not limited.

The computation is per change, not per principal: it is the same for every principal the
change reaches, so a group of 10,000 costs what a group of one does. It over-approximates
(a grant some principal already held elsewhere still counts), which can only refuse more.

A refusal raises `DelegationRefused` (a `ValidationError`, so forms show it) naming what
exceeds the author's rights; the request remembers it and the view guard records it in
the trail once the change has been rolled back (`record_refusals`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import User
from audit import events
from audit.services import record
from organizations.models import Application, Membership, Organization, Project, Resource
from policies import authz
from policies.catalogue import GUARDRAIL_EDIT, ORGANIZATION, RESOURCE_TYPE_OF
from policies.evaluator import CompiledRule, RequestFacts, ResourceFacts, ResourceScope
from policies.interruptions import back_url, interruption

ALL_PROJECTS = "all_projects"
# Named in a refusal; the rest are counted ("and 12 more").
_MAX_NAMED = 8
_REFUSALS = "_delegation_refusals"
_TEMPLATE = "policies/delegation_refused.html"


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One action somewhere: `where` is "organization", "all_projects" or a project id;
    on one resource (`resource`, its id), `where` is the resource's project."""

    action: str
    where: str
    resource: str = ""

    @property
    def project_id(self) -> str | None:
        return None if self.where in (ORGANIZATION, ALL_PROJECTS) else self.where


# A chosen resource's place in the index: apart from its project's, which covers it.
_RESOURCE = "resource:"


def _places(rule: CompiledRule, action: str) -> Iterable[str]:
    scope = rule.scope
    if scope == "organization":
        return (ORGANIZATION,)
    if scope == "all_projects":
        return (ALL_PROJECTS,)
    if isinstance(scope, ResourceScope):
        # Only the resources of the action's type: the rule does nothing on the others.
        kind = RESOURCE_TYPE_OF.get(action)
        return [_RESOURCE + rid for rid, (t, _) in scope.by_id.items() if t == kind]
    return sorted(scope)  # type: ignore[arg-type]


def _index(rules: Iterable[CompiledRule], effect: str) -> dict[tuple[str, str], set[str]]:
    """(action, where) -> the conditions under which `rules` of `effect` cover it ("" for
    none)."""
    index: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        if rule.effect != effect:
            continue
        for action in rule.actions:
            for where in _places(rule, action):
                index.setdefault((action, where), set()).add(rule.condition_source)
    return index


def _covered(
    index: dict[tuple[str, str], set[str]],
    action: str,
    where: str,
    condition: str,
    located: Mapping[str, str],
) -> bool:
    """Does `index` hold (action, where), or its project for a resource, or all projects
    for a project or a resource, with no condition or with exactly `condition`?"""
    if where.startswith(_RESOURCE):
        places: tuple[str, ...] = (where, located[where], ALL_PROJECTS)
    elif where not in (ORGANIZATION, ALL_PROJECTS):
        places = (where, ALL_PROJECTS)
    else:
        places = (where,)
    for place in places:
        conditions = index.get((action, place))
        if conditions and ("" in conditions or condition in conditions):
            return True
    return False


def _grant(action: str, where: str, located: Mapping[str, str]) -> Grant:
    if where.startswith(_RESOURCE):
        return Grant(action, located[where], where.removeprefix(_RESOURCE))
    return Grant(action, where)


def widening(before: Iterable[CompiledRule], after: Iterable[CompiledRule]) -> list[Grant]:
    """The grants a change from `before` to `after` (the rules it takes away and gives
    to the same principals) can add, sorted. Empty when it only narrows access."""
    before, after = list(before), list(after)
    # Each chosen resource's project: a grant on its project covers it.
    located = {
        _RESOURCE + rid: project
        for rule in (*before, *after)
        if isinstance(rule.scope, ResourceScope)
        for rid, (_, project) in rule.scope.by_id.items()
    }
    added: set[Grant] = set()
    allowed_before = _index(before, "allow")
    for (action, where), conditions in _index(after, "allow").items():
        if any(not _covered(allowed_before, action, where, c, located) for c in conditions):
            added.add(_grant(action, where, located))
    denied_after = _index(after, "deny")
    for (action, where), conditions in _index(before, "deny").items():
        if any(not _covered(denied_after, action, where, c, located) for c in conditions):
            added.add(_grant(action, where, located))
    return sorted(added)


@dataclass(frozen=True, slots=True)
class Author:
    """Who makes a change (a membership, or an application through its API key), and the
    facts of their current request."""

    subject: Membership | Application
    facts: RequestFacts

    @property
    def is_owner(self) -> bool:
        principal = authz.principal_of(self.subject)
        return principal.is_owner and principal.is_active

    def may(
        self, action: str, project_id: str | None = None, resource: ResourceFacts | None = None
    ) -> bool:
        """Decided with the author's rules as they stand before the change (cached), on
        `resource` when given (in its project)."""
        return authz.decide_for(self.subject, action, project_id, self.facts, resource).allowed


def author_of(
    *, organization: Organization, actor: User | None, request: HttpRequest | None
) -> Author | None:
    """The author of a change in `organization`, or None when `actor` is no member of it.

    In a request, its principal (the guard's membership, or an API key's bearer: an
    application key's changes are judged by the application's own rights) with the
    request's facts. Without a request (commands, the demo seed) the actor's membership is
    read and the facts are a request from nowhere, without MFA.
    """
    subject = authz.subject_of(request) if request is not None else None
    if subject is None or subject.organization_id != organization.pk:
        if actor is None or not actor.is_authenticated:
            return None
        subject = (
            Membership.objects.select_related("user", "organization")
            .filter(organization=organization, user=actor)
            .first()
        )
        if subject is None:
            return None
    if request is not None:
        facts = authz.request_facts(request)
    else:
        facts = RequestFacts(ip="", user_agent="", time=timezone.now(), mfa=False)
    return Author(subject=subject, facts=facts)


class DelegationRefused(ValidationError):
    """A change would grant what its author does not hold; nothing was saved."""

    def __init__(self, message: str, exceeding: Sequence[Grant]) -> None:
        super().__init__(message, code="delegation_ceiling")
        self.exceeding = tuple(exceeding)


def describe(grants: Sequence[Grant], organization: Organization) -> list[str]:
    """Plain words for grants: "billing:invoices:read", "compute:instances:create in all
    projects", "dns:zones:list in project web"."""
    ids = {grant.project_id for grant in grants if grant.project_id}
    names = (
        dict(
            Project.objects.filter(organization=organization, pk__in=ids).values_list("pk", "name")
        )
        if ids
        else {}
    )
    names = {str(pk): name for pk, name in names.items()}
    resource_ids = {grant.resource for grant in grants if grant.resource}
    resources = (
        Resource.objects.filter(organization=organization, pk__in=resource_ids).values_list(
            "pk", "name"
        )
        if resource_ids
        else ()
    )
    resource_names = {str(pk): name for pk, name in resources}
    words = []
    for grant in grants:
        if grant.where == ORGANIZATION:
            words.append(grant.action)
        elif grant.where == ALL_PROJECTS:
            words.append(f"{grant.action} in all projects")
        elif grant.resource:
            resource = resource_names.get(grant.resource, grant.resource)
            project = names.get(grant.where, grant.where)
            words.append(f"{grant.action} on resource {resource} in project {project}")
        else:
            words.append(f"{grant.action} in project {names.get(grant.where, grant.where)}")
    return words


def _resource_facts(
    grants: Sequence[Grant], organization: Organization
) -> dict[str, ResourceFacts]:
    """The facts of the resources `grants` name (one query), for the author's decisions:
    conditions may read their tags. One deleted meanwhile is decided without tags."""
    ids = {grant.resource for grant in grants if grant.resource}
    if not ids:
        return {}
    rows = Resource.objects.filter(organization=organization, pk__in=ids).values_list("pk", "tags")
    tags = {str(pk): value for pk, value in rows}
    return {
        grant.resource: ResourceFacts.of(
            type=RESOURCE_TYPE_OF[grant.action],
            id=grant.resource,
            project_id=grant.where,
            tags=tags.get(grant.resource),
        )
        for grant in grants
        if grant.resource
    }


def require_within_rights(
    *,
    organization: Organization,
    actor: User | None,
    request: HttpRequest | None,
    before: Iterable[CompiledRule] = (),
    after: Iterable[CompiledRule] = (),
    principals: str = "",
) -> None:
    """Refuse (raise `DelegationRefused`) unless the author holds every grant the change
    from `before` to `after` adds. `principals` names who the change reaches, for the
    message and the trail. Call it before writing, inside the service's transaction."""
    grants = widening(before, after)
    if not grants:
        return
    author = author_of(organization=organization, actor=actor, request=request)
    if author is not None and author.is_owner:
        return
    exceeding = grants
    if author is not None:
        facts = _resource_facts(grants, organization)
        exceeding = [
            grant
            for grant in grants
            if not author.may(grant.action, grant.project_id, facts.get(grant.resource))
        ]
    if not exceeding:
        return
    words = describe(exceeding, organization)
    named = ", ".join(words[:_MAX_NAMED])
    if len(words) > _MAX_NAMED:
        named += f" and {len(words) - _MAX_NAMED} more"
    target = f" to {principals}" if principals else ""
    message = (
        f"You can only grant what you hold yourself. This change would give{target} "
        f"{named}, which your own permissions do not allow. Nothing was saved."
    )
    if request is not None:
        request.__dict__.setdefault(_REFUSALS, []).append(
            {"principals": principals, "exceeding": words}
        )
    raise DelegationRefused(message, exceeding)


def require_guardrail_editor(
    *, organization: Organization, actor: User | None, request: HttpRequest | None
) -> None:
    """Refuse a change to the guardrails unless its author is an owner or holds
    `GUARDRAIL_EDIT` by name: the guardrails bind everyone else, IAM managers included."""
    author = author_of(organization=organization, actor=actor, request=request)
    if author is not None and (author.is_owner or author.may(GUARDRAIL_EDIT)):
        return
    message = (
        "Only owners, and people granted iam:guardrails:update by name, change the guardrails: "
        "they bind everyone else, you included. Nothing was saved."
    )
    if request is not None:
        request.__dict__.setdefault(_REFUSALS, []).append(
            {"principals": "the guardrails", "exceeding": [GUARDRAIL_EDIT]}
        )
    raise DelegationRefused(message, [Grant(GUARDRAIL_EDIT, ORGANIZATION)])


def refused_response(request: HttpRequest, error: DelegationRefused) -> HttpResponse:
    """The page for a refusal no form could show (a button rather than a form posted)."""
    context = {"error": error, "back_url": back_url(request)}
    return interruption(request, _TEMPLATE, "refusal", context, status=403)


def record_refusals(request: HttpRequest) -> None:
    """Record the refusals of this request in the trail, after the change rolled back.
    The actor is the API key of an API request (iamportal.api), else the signed-in user."""
    actor = getattr(request, "api_key", None) or request.user
    for data in request.__dict__.pop(_REFUSALS, ()):
        record(
            action=events.DELEGATION_REFUSED,
            organization=request.organization,  # type: ignore[attr-defined]
            actor=actor,
            target_label=data["principals"] or "(no principal)",
            data=data,
            request=request,
        )
