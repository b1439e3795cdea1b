"""Projects: list, create, detail, edit in place, delete."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from iamportal.forms import CONFIRM_NAME, ConfirmNameForm, save_form
from iamportal.request import paginate
from organizations.forms.projects import ProjectForm
from organizations.models import Project
from organizations.selectors import projects as project_selectors
from organizations.services import projects as project_services
from organizations.views.resources import resources_section
from policies.guards import requires


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
    readable = project_selectors.projects_allowing(request, ["projects:projects:read"])
    page = paginate(request, readable)
    hidden = (
        not page.paginator.count and project_selectors.projects_of(request.organization).exists()
    )
    return {"page": page, "form": form, "projects_hidden": hidden}


@requires("projects:projects:create")
@require_POST
def project_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    form = ProjectForm(request.POST, organization=organization)
    if saved := save_form(
        form,
        lambda data: project_services.project_create(
            organization=organization,
            name=data["name"],
            description=data["description"],
            actor=request.user,
            request=request,
        ),
    ):
        project = saved.value
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
            "delete_form": _delete_form(project),
            "resources": resources_section(request, project),
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
    if request.method == "POST" and (
        saved := save_form(
            form,
            lambda data: project_services.project_update(
                project=project,
                name=data["name"],
                description=data["description"],
                actor=request.user,
                request=request,
            ),
        )
    ):
        project = saved.value
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
        {
            "project": project,
            "form": form,
            "delete_form": _delete_form(project),
            "resources": resources_section(request, project),
        },
        status=200 if not form.is_bound else 400,
    )


@requires("projects:projects:read", project_kwarg="project_id")
@require_GET
def project_row(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    """The display row of a project, to cancel an inline edit."""
    return render(
        request, "organizations/project_list.html#project-row", {"project": request.project}
    )


def _delete_form(project: Project, data: Any = None) -> ConfirmNameForm:
    return ConfirmNameForm(data, expected=project.name, what="project name", field=CONFIRM_NAME)


@requires("projects:projects:delete", project_kwarg="project_id")
@require_http_methods(["GET", "POST"])
def project_delete(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = request.project
    form = _delete_form(project, request.POST or None)
    if request.method == "POST" and (
        save_form(
            form,
            lambda data: project_services.project_delete(
                project=project,
                confirm_name=data[CONFIRM_NAME],
                actor=request.user,
                request=request,
            ),
        )
    ):
        messages.success(request, f"Project {project.name} deleted.")
        return redirect("organizations:project_list", org_id=org_id)
    return render(
        request,
        "organizations/project_delete.html",
        {"project": project, "form": form},
        status=400 if form.is_bound else 200,
    )
