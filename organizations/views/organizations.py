"""The organization's own pages: the home redirect, the organizations list, the dashboard (or a
member's projects when the dashboard is refused), settings."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from audit.selectors import recent_events
from iamportal.forms import save_form
from iamportal.request import paginate
from organizations.forms.organizations import OrganizationForm
from organizations.selectors import api_keys as api_key_selectors
from organizations.selectors import organizations as organization_selectors
from organizations.selectors import projects as project_selectors
from organizations.services import organizations as organization_services
from policies.authz import authorize, can, deny_response
from policies.guards import requires, signed_in

CURRENT_ORG_SESSION_KEY = "current_organization"


def _remember_organization(request: HttpRequest, org_id: object) -> None:
    """The organization `home` opens next time. Written only when it changes: setting it
    on every dashboard view saved the session (a transaction and an UPDATE) each time."""
    if request.session.get(CURRENT_ORG_SESSION_KEY) != str(org_id):
        request.session[CURRENT_ORG_SESSION_KEY] = str(org_id)


@signed_in
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the organization they used last, or to their first one."""
    memberships = list(organization_selectors.memberships_of(request.user))
    if not memberships:
        return redirect("organizations:list")
    last = request.session.get(CURRENT_ORG_SESSION_KEY)
    chosen = next((m for m in memberships if str(m.organization_id) == last), memberships[0])
    return redirect("organizations:dashboard", org_id=chosen.organization_id)


@signed_in
@require_http_methods(["GET", "POST"])
def organization_list(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and (
        saved := save_form(
            form,
            lambda data: organization_services.organization_create(
                name=data["name"], owner=request.user, request=request
            ),
        )
    ):
        organization = saved.value
        messages.success(request, f"Organization {organization.name} created.")
        return redirect("organizations:dashboard", org_id=organization.pk)
    memberships = organization_selectors.memberships_with_counts(request.user)
    return render(
        request,
        "organizations/organization_list.html",
        {
            "form": form,
            "memberships": memberships,
            "may_create": request.user.managed_by_id is None,
        },
        status=400 if form.is_bound else 200,
    )


@signed_in
@require_GET
def organization_switch(request: HttpRequest) -> HttpResponse:
    """The sidebar switcher: a plain GET form, or an HTMX change that asks for a redirect."""
    try:
        org_id = UUID(request.GET.get("org", ""))
    except ValueError:
        return redirect("organizations:list")
    url = reverse("organizations:dashboard", kwargs={"org_id": org_id})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def organization_home(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Guard the dashboard with `organization:organization:read`, like `@requires`, but a
    member refused it who holds other grants gets their own home instead of a 403: the
    projects where they may act and what they may do there (the page after sign-in).
    A member granted nothing keeps the 403 page that says so."""
    action = "organization:organization:read"

    @wraps(view)
    def guarded(request: HttpRequest, org_id: Any) -> HttpResponse:
        membership = getattr(request, "security_membership", None)
        if membership is None or str(membership.organization_id) != str(org_id):
            membership = organization_selectors.membership_for(
                user=request.user, organization_id=org_id
            )
        request.membership = membership  # type: ignore[attr-defined]
        request.organization = membership.organization  # type: ignore[attr-defined]
        request.iam_action = action  # type: ignore[attr-defined]
        decision = authorize(request, action)
        if decision.allowed:
            return view(request, org_id=org_id)
        rules = project_selectors.member_rules(request)
        if not any(rule.effect == "allow" for rule in rules):
            return deny_response(request, decision)
        _remember_organization(request, org_id)
        return member_home(request)

    guarded.iam_access = "action"  # type: ignore[attr-defined]
    guarded.iam_action = action  # type: ignore[attr-defined]
    return guarded


def member_home(request: HttpRequest) -> HttpResponse:
    """The home of a member who may not see the organization's overview: one page of the
    projects where their policies allow something, with what they may do in each."""
    held = project_selectors.project_actions_held(request)
    page = paginate(request, project_selectors.projects_allowing(request, held) if held else [])
    rows = [(p, project_selectors.actions_allowed_in(request, p, held)) for p in page]
    return render(request, "organizations/member_home.html", {"page": page, "rows": rows})


@require_GET  # outermost: the member home a refused member gets is GET only too
@organization_home
def dashboard(request: HttpRequest, org_id: UUID) -> HttpResponse:
    _remember_organization(request, org_id)
    organization = request.organization
    # Events name invitees, keys and others' denials: only for those who may read the trail.
    may_read_audit = can(request, "audit:events:list")
    return render(
        request,
        "organizations/dashboard.html",
        {
            "counts": organization_selectors.organization_counts(organization),
            "may_read_audit": may_read_audit,
            "events": recent_events(organization, limit=8) if may_read_audit else [],
            # Everyone sees their own keys expiring within 7 days; key listers see all.
            "expiring_keys": list(
                api_key_selectors.api_keys_expiring_soon(
                    organization=organization,
                    membership=None if can(request, "iam:api-keys:list") else request.membership,
                )[:5]
            ),
        },
    )


@requires("organization:organization:update")
@require_http_methods(["GET", "POST"])
def organization_settings(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    form = OrganizationForm(request.POST or None, instance=organization)
    if request.method == "POST" and form.is_valid():
        organization_services.organization_rename(
            organization=organization,
            name=form.cleaned_data["name"],
            actor=request.user,
            request=request,
        )
        messages.success(request, "Organization renamed.")
        return redirect("organizations:settings", org_id=org_id)
    return render(request, "organizations/settings.html", {"form": form})
