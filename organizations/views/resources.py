"""Resources in the console: a project's resources of one type, and one resource's page.

A resource list's URL names its type (one pattern per catalogue type, organizations.urls),
so each is guarded by a static `@requires` of that type's `list` action. A resource's page
names only the resource: `policies.guards.requires_on_resource` finds it first, then
decides its type's action on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from iamportal.request import paginate, search_term
from organizations.models import Project, Resource
from organizations.selectors import resources as resource_selectors
from policies.authz import authorize, can, resource_facts
from policies.catalogue import PER_RESOURCE_ACTIONS, RESOURCE_TYPES
from policies.guards import requires, requires_on_resource
from policies.selectors.who_can import WhoCan, who_can_counts

View = Callable[..., HttpResponse]

TEMPLATES = "organizations/resources"


def resources_section(request: HttpRequest, project: Project) -> dict[str, Any]:
    """The project page's Resources section: each type the viewer may list here, with its
    count (one query for all types). Types they may not list are left out, so the page
    never links to a 403."""
    counts = resource_selectors.type_counts(project)
    listable = [
        (resource_type, counts.get(key, 0))
        for key, resource_type in RESOURCE_TYPES.items()
        if can(request, resource_type.action("list"), project.pk)
    ]
    return {"types": listable, "total": sum(counts.values())}


@require_GET
def _resource_list(
    request: HttpRequest, org_id: UUID, project_id: UUID, resource_type: str
) -> HttpResponse:
    """One page of a project's resources of one type, searched by name or `key=value` tag;
    with HTMX (search as you type), just the results."""
    project = request.project  # type: ignore[attr-defined]
    kind = RESOURCE_TYPES[resource_type]
    q = search_term(request)
    resources = resource_selectors.resources_of(project, type=kind.key, search=q)
    page = paginate(request, resources)
    read = kind.action("read")
    context = {
        "project": project,
        "resource_type": kind,
        "q": q,
        "page": page,
        # Decided on each row (rules may be scoped to some resources, or read their tags),
        # so no row links to a 403; the page's rows are bounded, the decisions in memory.
        "readable": {r.pk for r in page if authorize(request, read, project.pk, r).allowed},
    }
    if request.htmx and request.htmx.target == "resource-results":
        return render(request, f"{TEMPLATES}/list.html#results", context)
    return render(request, f"{TEMPLATES}/list.html", context)


# One guarded view per type, each requiring its own `list` action (organizations.urls).
resource_list_views: dict[str, View] = {
    key: requires(resource_type.action("list"), project_kwarg="project_id")(_resource_list)
    for key, resource_type in RESOURCE_TYPES.items()
}


@requires_on_resource("read")
@require_GET
def resource_detail(request: HttpRequest, org_id: UUID, resource_id: UUID) -> HttpResponse:
    """A resource's tags and details, and the evaluator's decision, with its explanation,
    on each of its type's actions for the viewer."""
    resource = request.resource  # type: ignore[attr-defined]
    kind = RESOURCE_TYPES[resource.type]
    # `list` and `create` are decided in the project; the others on this resource.
    decisions = [
        authorize(
            request,
            action,
            resource.project_id,
            resource if action in PER_RESOURCE_ACTIONS else None,
        )
        for action in kind.actions
    ]
    return render(
        request,
        f"{TEMPLATES}/detail.html",
        {
            "resource": resource,
            "resource_type": kind,
            "project": request.project,  # type: ignore[attr-defined]
            "tags": sorted(resource.tags.items()),
            "may_list": can(request, kind.action("list"), resource.project_id),
            "decisions": decisions,
            "who_can": _who_can_section(request, resource, kind.actions),
        },
    )


def _who_can_section(
    request: HttpRequest, resource: Resource, actions: tuple[str, ...]
) -> list[tuple[str, WhoCan]]:
    """Who may do each of the type's per-resource actions on it, counted (a constant
    number of queries for all of them, whatever the number of principals), for a viewer
    who may use the who-can page (the simulator's permission); else nothing."""
    if not can(request, "iam:simulator:use"):
        return []
    organization = request.organization  # type: ignore[attr-defined]
    per_resource = [action for action in actions if action in PER_RESOURCE_ACTIONS]
    return list(who_can_counts(organization, per_resource, resource_facts(resource)).items())
