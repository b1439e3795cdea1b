"""The search endpoints of the pickers (iamportal.widgets.SearchPick): each answers at most
`PICK_MATCHES` of the organization's rows matching the search, those starting with it
first, with the chosen rows kept; each is guarded by the permission of its picker's page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from iamportal.request import search_term
from iamportal.widgets import PICK_MATCHES, chosen_of, pick_matches, pick_name
from organizations.selectors import groups as group_selectors
from organizations.selectors import organizations as organization_selectors
from organizations.selectors.applications import (
    addable_groups,
    application_choices,
    application_for,
)
from organizations.selectors.projects import projects_of
from policies.catalogue import GUARDRAIL_EDIT
from policies.forms.tools import (
    principal_label,
    principal_matches,
    principal_named,
    principal_value,
)
from policies.guards import requires
from policies.selectors import attachments as attachment_selectors
from policies.selectors import policies as policy_selectors
from policies.views.attachments import principal_for

# What each kind of principal is searched by, and how a match reads.
MEMBER_FIELDS = ("user__email", "user__full_name")
NAME_FIELDS = ("name",)


def member_label(membership: Any) -> str:
    return membership.user.email


def policy_label(policy: Any) -> str:
    return f"{policy.name} (managed)" if policy.is_managed else policy.name


def _pick_params(request: HttpRequest) -> tuple[str, str, str]:
    """The picker's field name, element id and input type, as its search posts them."""
    name = pick_name(request.GET.get("name", ""), "pick")
    element_id = pick_name(request.GET.get("id", ""), name)
    input_type = "checkbox" if request.GET.get("type") == "checkbox" else "radio"
    return name, element_id, input_type


def _render_results(
    request: HttpRequest,
    params: tuple[str, str, str],
    chosen: list[tuple[Any, str]],
    matches: list[tuple[Any, str]],
    q: str,
) -> HttpResponse:
    name, element_id, input_type = params
    context = {
        "id": element_id,
        "name": name,
        "input_type": input_type,
        "chosen": chosen,
        "matches": matches,
        "q": q,
        "limit": PICK_MATCHES,
    }
    return render(request, "includes/_search_pick_results.html", context)


def render_picks(
    request: HttpRequest,
    queryset: QuerySet[Any],
    fields: Sequence[str] = NAME_FIELDS,
    label: Callable[[Any], str] = str,
) -> HttpResponse:
    """The picker's inputs (`includes/_search_pick_results.html`): the chosen rows (posted
    under the field's `name`), then the matches of `<name>_q` among the others."""
    params = _pick_params(request)
    name = params[0]
    chosen = chosen_of(queryset, request.GET.getlist(name)[:100])
    q = search_term(request, f"{name}_q")
    matches = pick_matches(queryset.exclude(pk__in=[row.pk for row in chosen]), q, fields)
    return _render_results(
        request,
        params,
        [(row.pk, label(row)) for row in chosen],
        [(row.pk, label(row)) for row in matches],
        q,
    )


@requires("iam:policies:attach")
@require_GET
def pick_policy_principals(
    request: HttpRequest, org_id: UUID, policy_id: UUID, kind: str
) -> HttpResponse:
    """The policy page's attach pickers: users, groups or applications it is not attached to."""
    organization = request.organization  # type: ignore[attr-defined]
    policy = policy_selectors.policy_for(organization=organization, policy_id=policy_id)
    if kind == "user":
        members = attachment_selectors.attachable_members(policy, organization)
        return render_picks(request, members, MEMBER_FIELDS, member_label)
    if kind == "group":
        return render_picks(request, attachment_selectors.attachable_groups(policy, organization))
    if kind == "application":
        applications = attachment_selectors.attachable_applications(policy, organization)
        return render_picks(request, applications)
    raise Http404("No such principal kind.")


@requires("iam:policies:attach")
@require_GET
def pick_principal_policies(
    request: HttpRequest, org_id: UUID, kind: str, principal_id: UUID
) -> HttpResponse:
    """A principal's attach-policy picker: policies not attached to it yet."""
    principal = principal_for(
        organization=request.organization,  # type: ignore[attr-defined]
        kind=kind,
        principal_id=principal_id,
    )
    policies = attachment_selectors.attachable_policies(principal)
    return render_picks(request, policies, NAME_FIELDS, policy_label)


@requires("iam:users:update")
@require_GET
def pick_user_groups(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    """The user page's join-group picker: groups the user is not in."""
    membership = organization_selectors.member_for(
        organization=request.organization,  # type: ignore[attr-defined]
        membership_id=membership_id,
    )
    return render_picks(request, group_selectors.groups_not_joined(membership))


@requires("iam:groups:update")
@require_GET
def pick_group_members(request: HttpRequest, org_id: UUID, group_id: UUID) -> HttpResponse:
    """The group page's add-user picker: users not in the group."""
    group = group_selectors.group_for(
        organization=request.organization,  # type: ignore[attr-defined]
        group_id=group_id,
    )
    return render_picks(
        request, group_selectors.addable_members(group), MEMBER_FIELDS, member_label
    )


@requires("iam:groups:update")
@require_GET
def pick_group_applications(request: HttpRequest, org_id: UUID, group_id: UUID) -> HttpResponse:
    """The group page's add-application picker: applications not in the group."""
    group = group_selectors.group_for(
        organization=request.organization,  # type: ignore[attr-defined]
        group_id=group_id,
    )
    return render_picks(request, group_selectors.addable_applications(group))


@requires("iam:applications:update")
@require_GET
def pick_application_groups(
    request: HttpRequest, org_id: UUID, application_id: UUID
) -> HttpResponse:
    """An application's add-to-group picker: groups it is not in."""
    application = application_for(
        organization=request.organization,  # type: ignore[attr-defined]
        application_id=application_id,
    )
    return render_picks(request, addable_groups(application))


@requires("iam:users:invite")
@require_GET
def pick_invitation_groups(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The invitation form's groups."""
    return render_picks(request, group_selectors.groups_of_organization(request.organization))  # type: ignore[attr-defined]


@requires("iam:users:create")
@require_GET
def pick_member_groups(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The new member form's groups."""
    return render_picks(request, group_selectors.groups_of_organization(request.organization))  # type: ignore[attr-defined]


@requires("iam:api-keys:create")
@require_GET
def pick_key_applications(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The API key form's bearer: an application of the organization."""
    return render_picks(request, application_choices(request.organization))  # type: ignore[attr-defined]


@requires("iam:api-keys:create")
@require_GET
def pick_key_projects(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The API key form's default project."""
    return render_picks(request, projects_of(request.organization))  # type: ignore[attr-defined]


# --- the IAM tools and the rule editor


def project_label(project: Any) -> str:
    return project.name


def _projects(request: HttpRequest) -> HttpResponse:
    return render_picks(
        request,
        projects_of(request.organization),  # type: ignore[attr-defined]
        NAME_FIELDS,
        project_label,
    )


@requires("iam:simulator:use")
@require_GET
def pick_simulator_principals(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The simulator's principal: users and applications in one picker, posted as
    `user:<membership id>` or `application:<id>`."""
    organization = request.organization  # type: ignore[attr-defined]
    params = _pick_params(request)
    name = params[0]
    value = request.GET.get(name, "")
    chosen = [p for p in [principal_named(organization, value) if value else None] if p]
    q = search_term(request, f"{name}_q")
    matches = principal_matches(organization, q, exclude=chosen)
    return _render_results(
        request,
        params,
        [(principal_value(p), principal_label(p)) for p in chosen],
        [(principal_value(p), principal_label(p)) for p in matches],
        q,
    )


@requires("iam:simulator:use")
@require_GET
def pick_simulator_projects(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The simulator's and who-can's project."""
    return _projects(request)


@requires("iam:users:read")
@require_GET
def pick_users_permission_projects(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The project of a resource question on a user's effective permissions."""
    return _projects(request)


@requires("iam:applications:read")
@require_GET
def pick_applications_permission_projects(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The same on an application's effective permissions."""
    return _projects(request)


@requires("iam:policies:update")
@require_GET
def pick_rule_projects(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The rule editor's chosen projects."""
    return _projects(request)


@requires(GUARDRAIL_EDIT)
@require_GET
def pick_guardrail_projects(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The guardrail rule editor's chosen projects."""
    return _projects(request)
