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


def render_picks(
    request: HttpRequest,
    queryset: QuerySet[Any],
    fields: Sequence[str] = NAME_FIELDS,
    label: Callable[[Any], str] = str,
) -> HttpResponse:
    """The picker's inputs (`includes/_search_pick_results.html`): the chosen rows (posted
    under the field's `name`), then the matches of `<name>_q` among the others."""
    name = pick_name(request.GET.get("name", ""), "pick")
    element_id = pick_name(request.GET.get("id", ""), name)
    input_type = "checkbox" if request.GET.get("type") == "checkbox" else "radio"
    chosen = chosen_of(queryset, request.GET.getlist(name)[:100])
    q = search_term(request, f"{name}_q")
    matches = pick_matches(queryset.exclude(pk__in=[row.pk for row in chosen]), q, fields)
    context = {
        "id": element_id,
        "name": name,
        "input_type": input_type,
        "chosen": [(row.pk, label(row)) for row in chosen],
        "matches": [(row.pk, label(row)) for row in matches],
        "q": q,
        "limit": PICK_MATCHES,
    }
    return render(request, "includes/_search_pick_results.html", context)


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
