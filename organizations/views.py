from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.sudo import safe_next
from audit.selectors import recent_events
from organizations import application_selectors, project_access, selectors, services
from organizations.forms import OrganizationForm, ProjectDeleteForm, ProjectForm
from policies.authz import authorize, can, deny_response
from policies.guards import requires, signed_in

PAGE_SIZE = 25
CURRENT_ORG_SESSION_KEY = "current_organization"


def paginate(request: HttpRequest, queryset: Any, per_page: int = PAGE_SIZE) -> Any:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def search_term(request: HttpRequest, name: str = "q") -> str:
    """A search box's text: trimmed, bounded, and without NUL characters, which
    PostgreSQL refuses in any text value (a 500 otherwise)."""
    return request.GET.get(name, "").replace("\x00", "").strip()[:100]


def next_in_organization(request: HttpRequest, target: str | None, fallback: str) -> str:
    """`target` when it is a page of the request's organization on this site (a form's
    `next`), else `fallback`."""
    prefix = f"/o/{request.organization.pk}/"  # type: ignore[attr-defined]
    return safe_next(request, target, fallback) if (target or "").startswith(prefix) else fallback


def apply_errors(form: BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field when it names one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@signed_in
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to the organization they used last, or to their first one."""
    memberships = list(selectors.memberships_of(request.user))
    if not memberships:
        return redirect("organizations:list")
    last = request.session.get(CURRENT_ORG_SESSION_KEY)
    chosen = next((m for m in memberships if str(m.organization_id) == last), memberships[0])
    return redirect("organizations:dashboard", org_id=chosen.organization_id)


@signed_in
@require_http_methods(["GET", "POST"])
def organization_list(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create(
                name=form.cleaned_data["name"], owner=request.user, request=request
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Organization {organization.name} created.")
            return redirect("organizations:dashboard", org_id=organization.pk)
    memberships = selectors.memberships_with_counts(request.user)
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
            membership = selectors.membership_for(user=request.user, organization_id=org_id)
        request.membership = membership  # type: ignore[attr-defined]
        request.organization = membership.organization  # type: ignore[attr-defined]
        request.iam_action = action  # type: ignore[attr-defined]
        decision = authorize(request, action)
        if decision.allowed:
            return view(request, org_id=org_id)
        rules = project_access.member_rules(request)
        if not any(rule.effect == "allow" for rule in rules):
            return deny_response(request, decision)
        request.session[CURRENT_ORG_SESSION_KEY] = str(org_id)
        return member_home(request)

    guarded.iam_access = "action"  # type: ignore[attr-defined]
    guarded.iam_action = action  # type: ignore[attr-defined]
    return guarded


def member_home(request: HttpRequest) -> HttpResponse:
    """The home of a member who may not see the organization's overview: one page of the
    projects where their policies allow something, with what they may do in each."""
    held = project_access.project_actions_held(request)
    page = paginate(request, project_access.projects_allowing(request, held) if held else [])
    rows = [(p, project_access.actions_allowed_in(request, p, held)) for p in page]
    return render(request, "organizations/member_home.html", {"page": page, "rows": rows})


@require_GET  # outermost: the member home a refused member gets is GET only too
@organization_home
def dashboard(request: HttpRequest, org_id: UUID) -> HttpResponse:
    request.session[CURRENT_ORG_SESSION_KEY] = str(org_id)
    organization = request.organization
    # Events name invitees, keys and others' denials: only for those who may read the trail.
    may_read_audit = can(request, "audit:events:list")
    return render(
        request,
        "organizations/dashboard.html",
        {
            "counts": selectors.organization_counts(organization),
            "may_read_audit": may_read_audit,
            "events": recent_events(organization, limit=8) if may_read_audit else [],
            # Everyone sees their own keys expiring within 7 days; key listers see all.
            "expiring_keys": list(
                application_selectors.api_keys_expiring_soon(
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
        services.organization_rename(
            organization=organization,
            name=form.cleaned_data["name"],
            actor=request.user,
            request=request,
        )
        messages.success(request, "Organization renamed.")
        return redirect("organizations:settings", org_id=org_id)
    return render(request, "organizations/settings.html", {"form": form})


# Projects


@requires("projects:projects:list")
@require_GET
def project_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    return render(
        request,
        "organizations/project_list.html",
        _project_list_context(request, ProjectForm(organization=organization)),
    )


def _project_list_context(request: HttpRequest, form: ProjectForm) -> dict[str, Any]:
    """The list shows the projects the viewer may open; when that is none of them, the
    page says so rather than "no projects yet"."""
    readable = project_access.projects_allowing(request, ["projects:projects:read"])
    page = paginate(request, readable)
    hidden = not page.paginator.count and selectors.projects_of(request.organization).exists()
    return {"page": page, "form": form, "projects_hidden": hidden}


@requires("projects:projects:create")
@require_POST
def project_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    form = ProjectForm(request.POST, organization=organization)
    if form.is_valid():
        try:
            project = services.project_create(
                organization=organization,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
                request=request,
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Project {project.name} created.")
            if request.htmx:
                form = ProjectForm(organization=organization)
            else:
                return redirect("organizations:project_list", org_id=org_id)
    context = _project_list_context(request, form)
    if request.htmx:
        return render(request, "organizations/project_list.html#projects", context)
    return render(request, "organizations/project_list.html", context, status=400)


@requires("projects:projects:read", project_kwarg="project_id")
@require_GET
def project_detail(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = request.project
    return render(
        request,
        "organizations/project_detail.html",
        {
            "project": project,
            "form": ProjectForm(instance=project, organization=request.organization),
            "delete_form": ProjectDeleteForm(),
        },
    )


@requires("projects:projects:update", project_kwarg="project_id")
@require_http_methods(["GET", "POST"])
def project_update(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    """Rename or describe a project: inline in the list with HTMX, or on its own page."""
    project = request.project
    form = ProjectForm(
        request.POST or None,
        instance=project,
        organization=request.organization,
        # Unique ids: the inline edit row shares its page with the create form.
        auto_id=f"project-{project.pk}-%s",
    )
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_update(
                project=project,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
                request=request,
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            if request.htmx:
                return render(
                    request, "organizations/project_list.html#project-row", {"project": project}
                )
            messages.success(request, f"Project {project.name} saved.")
            return redirect("organizations:project_detail", org_id=org_id, project_id=project.pk)
    if form.is_bound:
        # Do not show the rejected name in headings: reload what is stored.
        project.refresh_from_db()
    if request.htmx:
        # 200 even on errors: htmx 2 does not swap 4xx responses into the row.
        return render(
            request,
            "organizations/project_list.html#project-edit-row",
            {"project": project, "form": form},
        )
    return render(
        request,
        "organizations/project_detail.html",
        {"project": project, "form": form, "delete_form": ProjectDeleteForm()},
        status=200 if not form.is_bound else 400,
    )


@requires("projects:projects:read", project_kwarg="project_id")
@require_GET
def project_row(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    """The display row of a project, to cancel an inline edit."""
    return render(
        request, "organizations/project_list.html#project-row", {"project": request.project}
    )


@requires("projects:projects:delete", project_kwarg="project_id")
@require_http_methods(["GET", "POST"])
def project_delete(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = request.project
    form = ProjectDeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.project_delete(
                project=project,
                confirm_name=form.cleaned_data["confirm_name"],
                actor=request.user,
                request=request,
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Project {project.name} deleted.")
            return redirect("organizations:project_list", org_id=org_id)
    return render(
        request,
        "organizations/project_delete.html",
        {"project": project, "form": form},
        status=400 if form.is_bound else 200,
    )
