"""Who can: `/o/<org>/iam/who-can/?action=…[&project=…][&resource=…]`, the principals an
action is allowed to (`policies.selectors.who_can`), a page at a time, or all as CSV.

Guarded by `iam:simulator:use`: the simulator already answers any principal's decision on
any action to whoever holds it, and who-can answers the same questions the other way
round. Links to a principal's permissions or a policy appear only when the viewer may
open them. Like the simulator, it records nothing (a read).
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from iamportal.request import search_term
from iamportal.widgets import pick_searches
from organizations.models import Organization, Project, Resource
from organizations.selectors.projects import project_for, projects_of
from organizations.selectors.resources import resource_for
from policies import catalogue
from policies.authz import resource_facts
from policies.forms.tools import action_choices, project_pick
from policies.guards import requires
from policies.selectors.who_can import STATUSES, WhoCan, WhoCanRow, who_can

TEMPLATE = "policies/who_can.html"
STATUS_LABELS = {
    "owner": "Owners",
    "allowed": "Allowed",
    "conditional": "Allowed under a condition",
    "blocked": "Granted, but blocked",
}
CSV_COLUMNS = ("type", "id", "label", "name", "status", "path", "condition", "blocked_by")


class WhoCanForm(forms.Form):
    """The question: an action, at organization level, in a project (none: every
    project), or on one of the organization's resources (by id, then in its project)."""

    action = forms.ChoiceField(choices=action_choices)
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        widget=project_pick("None (organization level, or every project)"),
    )
    resource = forms.UUIDField(
        label="Resource ID",
        required=False,
        help_text="Ask about one resource (then in its project); its page links here.",
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["project"].queryset = projects_of(organization).order_by("name")
        self.fields["project"].widget.search_url = reverse(
            "organizations:pick_simulator_projects", args=[organization.pk]
        )
        self.chosen: Resource | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action")
        if not action:
            return data
        level = catalogue.ACTIONS[action].level
        project: Project | None = data.get("project")
        if data.get("resource"):
            resource = resource_for(organization=self.organization, resource_id=data["resource"])
            self.chosen = resource
            kind = catalogue.RESOURCE_TYPES[resource.type]
            if catalogue.PER_RESOURCE_ACTIONS.get(action) != resource.type:
                verbs = ", ".join(a for a in kind.actions if a in catalogue.PER_RESOURCE_ACTIONS)
                self.add_error("action", f"On {resource.name}, ask about one of: {verbs}.")
            if project is not None and project.pk != resource.project_id:
                self.add_error("project", f"{resource.name} is in project {resource.project.name}.")
        elif project is not None and level == catalogue.ORGANIZATION:
            self.add_error(
                "project", f"{action} is an organization-level action: leave the project empty."
            )
        return data


def _check_ids(request: HttpRequest) -> None:
    """Another organization's project or resource, named by a well-formed id, is a 404
    (as everywhere else); a malformed one is the form's error."""
    organization = request.organization  # type: ignore[attr-defined]
    for name, find in (("project", project_for), ("resource", resource_for)):
        value = request.GET.get(name, "").strip()
        try:
            pk = uuid.UUID(value)
        except ValueError:
            continue
        if name == "project":
            find(organization=organization, project_id=pk)
        else:
            find(organization=organization, resource_id=pk)


@requires("iam:simulator:use")
@require_GET
def who_can_view(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The form, and once it names an action, the principals allowed it: searchable by
    email or name, filtered by status, 25 a page; `?format=csv` streams every row."""
    organization = request.organization  # type: ignore[attr-defined]
    _check_ids(request)
    asked = "action" in request.GET
    form = WhoCanForm(
        request.GET if asked else None, initial=request.GET.dict(), organization=organization
    )
    pick_searches(form, request.GET)
    context: dict[str, Any] = {"form": form, "status_labels": STATUS_LABELS}
    if asked and form.is_valid():
        data = form.cleaned_data
        resource = resource_facts(form.chosen) if form.chosen is not None else None
        project = form.chosen.project if form.chosen is not None else data["project"]
        answer = who_can(organization, data["action"], project.pk if project else None, resource)
        q = search_term(request)
        status = request.GET.get("status", "")
        status = status if status in STATUSES else ""
        if request.GET.get("format") == "csv":
            return _csv_response(answer, q, status)
        context.update(
            answer=answer,
            action=catalogue.ACTIONS[data["action"]],
            org_level=catalogue.ACTIONS[data["action"]].level == catalogue.ORGANIZATION,
            project=project,
            resource=form.chosen,
            q=q,
            status=status,
            page=answer.page(request.GET.get("page"), search=q, status=status),
            filtered=bool(q or status),
        )
    status_code = 400 if form.is_bound and form.errors else 200
    if request.htmx and request.htmx.target == "who-can-results" and "answer" in context:
        return render(request, "policies/_who_can_results.html", context)
    return render(request, TEMPLATE, context, status=status_code)


class _Echo:
    """A file-like object for csv.writer that hands back each line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    # Spreadsheets run cells starting with these as formulas: a label is not code.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_values(row: WhoCanRow) -> list[str]:
    """A row as the CSV (and nothing else) writes it, in `CSV_COLUMNS` order."""
    values = (row.type, str(row.id), row.label, row.name, row.status)
    return [*values, row.path_text, row.condition_text, row.blocked_text]


def _csv_lines(rows: Iterator[WhoCanRow]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        yield writer.writerow([_cell(value) for value in csv_values(row)])


def _csv_response(answer: WhoCan, q: str, status: str) -> StreamingHttpResponse:
    """Every row of the answer, read from the database a chunk at a time."""
    response = StreamingHttpResponse(
        _csv_lines(answer.iter_rows(search=q, status=status)),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    action = answer.action.replace(":", "-")
    response["Content-Disposition"] = f'attachment; filename="who-can-{action}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
