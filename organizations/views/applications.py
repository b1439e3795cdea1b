"""Applications: list, create, page, edit, delete, groups."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.sudo import sudo_required
from iamportal.forms import CONFIRM_NAME, ConfirmNameForm, apply_errors, save_form
from iamportal.fragments import csrf_input, link
from iamportal.request import paginate
from iamportal.widgets import pick_form
from organizations.forms.applications import ApplicationForm, GroupPickForm
from organizations.forms.tags import tags_formset
from organizations.models import Application, Group
from organizations.selectors import api_keys as api_key_selectors
from organizations.selectors import applications as application_selectors
from organizations.selectors.groups import group_for
from organizations.services import applications as application_services
from organizations.services import groups as group_services
from policies.authz import can
from policies.guards import requires
from policies.previewed import save_or_preview
from policies.views.attachments import policies_panel, with_policies_panel

DETAIL = "organizations/iam/applications/application_detail.html"


LIST = "organizations/iam/applications/application_list.html"


def _application(request: HttpRequest, application_id: UUID) -> Application:
    return application_selectors.application_for(
        organization=request.organization,  # type: ignore[attr-defined]
        application_id=application_id,
    )


def _edit_form(application: Application, data: Any = None) -> ApplicationForm:
    # Its own ids: the edit form can share a page with other forms.
    return ApplicationForm.for_application(
        application, data, auto_id=f"application-{application.pk}-%s"
    )


def _group_rows(context: dict[str, Any]) -> SafeString:
    """The groups table's rows, written in Python: a template loop with a link and a
    form per row cost ~0.15 ms a row. Every value is escaped by format_html."""
    csrf = context["csrf_input"]

    def row(group: Group) -> SafeString:
        name = group.name
        named = (
            format_html('<a href="{}{}/">{}</a>', context["group_prefix"], group.pk, name)
            if context["may_read_groups"]
            else name
        )
        actions = ""
        if context["may_update"]:
            url = link(
                "organizations:application_group_remove", *context["application_ids"], group.pk
            )
            actions = format_html(
                '<form method="post" action="{0}" hx-post="{0}" hx-target="#application-groups"'
                ' hx-swap="outerHTML">{1}<button type="submit" class="button small secondary">'
                'Remove<span class="visually-hidden"> from {2}</span></button> <button'
                ' type="submit" name="preview" value="1" class="button small secondary">'
                'Preview<span class="visually-hidden"> removing from {2}</span></button></form>',
                url,
                csrf,
                name,
            )
        return format_html(
            '<tr><td>{}</td><td>{}</td><td class="row-actions">{}</td></tr>',
            named,
            Truncator(group.description).chars(80) if group.description else "—",
            actions,
        )

    return format_html_join("\n", "{}", ((row(group),) for group in context["groups"]))


def _groups_context(
    request: HttpRequest, application: Application, form: GroupPickForm | None = None
) -> dict[str, Any]:
    """What the groups card (`#application-groups`) renders: the add picker searches the
    groups the application is not in (never lists them); `form` is a refused add."""
    ids = [application.organization_id, application.pk]
    pick = pick_form(
        "group",
        application_selectors.addable_groups(application),
        label="Add to a group",
        search_url=reverse("organizations:pick_application_groups", args=ids),
        query=request.GET,
        placeholder="Type a group name",
        auto_id="add-group-%s",
    )
    chosen = form.cleaned_data.get("group") if form is not None else None
    if chosen is not None:
        # The service refused a valid choice: it stays chosen (its row already read).
        pick.initial["group"] = chosen.pk
        pick.fields["group"].widget.known = [chosen]
    context: dict[str, Any] = {
        "application": application,
        "groups": list(application_selectors.groups_of_application(application)),
        "group_form": form,
        "group_pick": pick,
        # Asked and reversed once per card rather than per row.
        "may_update": can(request, "iam:applications:update"),
        "may_read_groups": can(request, "iam:groups:read"),
        "group_prefix": reverse("organizations:group_list", args=ids[:1]),
        "group_add_url": reverse("organizations:application_group_add", args=ids),
        "application_ids": ids,
        "csrf_input": csrf_input(request),
    }
    context["group_rows"] = SimpleLazyObject(lambda: _group_rows(context))
    return context


def _detail_context(
    request: HttpRequest, application: Application, group_form: GroupPickForm | None = None
) -> dict[str, Any]:
    """The whole page: the groups card (with `group_form` when it was refused), the
    policies panel and the keys."""
    organization = request.organization  # type: ignore[attr-defined]
    return {
        **_groups_context(request, application, group_form),
        "api_keys": list(
            api_key_selectors.api_keys_of(organization=organization, application=application)
        ),
        "policies_panel": policies_panel(request, application),
    }


@requires("iam:applications:list")
@require_GET
def application_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    page = paginate(request, application_selectors.applications_of(request.organization))
    return render(request, LIST, {"page": page, "form": ApplicationForm()})


@requires("iam:applications:create")
@require_POST
def application_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    form = ApplicationForm(request.POST)
    if saved := save_form(
        form,
        lambda data: application_services.application_create(
            organization=request.organization,
            name=data["name"],
            description=data["description"],
            actor=request.user,
            request=request,
        ),
    ):
        application = saved.value
        messages.success(
            request, f"Application {application.name} created. Give it groups or an API key."
        )
        url = application_url(application)
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {
        "page": paginate(request, application_selectors.applications_of(request.organization)),
        "form": form,
    }
    if request.htmx:
        return render(request, f"{LIST}#applications", context)
    return render(request, LIST, context, status=400)


def application_url(application: Application) -> str:
    return reverse(
        "organizations:application_detail",
        kwargs={"org_id": application.organization_id, "application_id": application.pk},
    )


@requires("iam:applications:read")
@require_GET
def application_detail(request: HttpRequest, org_id: UUID, application_id: UUID) -> HttpResponse:
    """The application's page; with HTMX, its details card (to cancel an inline edit)."""
    application = _application(request, application_id)
    if request.htmx:
        return render(request, f"{DETAIL}#details", {"application": application})
    return render(request, DETAIL, _detail_context(request, application))


@requires("iam:applications:update")
@require_http_methods(["GET", "POST"])
def application_update(request: HttpRequest, org_id: UUID, application_id: UUID) -> HttpResponse:
    """Rename and describe: in place on the detail page with HTMX, or on its own page."""
    application = _application(request, application_id)
    form = _edit_form(application, request.POST or None)
    if request.method == "POST" and (
        saved := save_form(
            form,
            lambda data: application_services.application_update(
                application=application,
                name=data["name"],
                description=data["description"],
                actor=request.user,
                request=request,
            ),
        )
    ):
        application = saved.value
        messages.success(request, f"Application {application.name} saved.")
        if request.htmx:
            return render(request, f"{DETAIL}#details", {"application": application})
        return redirect(application_url(application))
    if request.htmx:
        # 200 even on errors: htmx 2 does not swap 4xx responses.
        return render(request, f"{DETAIL}#details-edit", {"application": application, "form": form})
    return render(
        request,
        "organizations/iam/applications/application_form.html",
        {"application": application, "form": form},
        status=400 if form.is_bound else 200,
    )


@requires("iam:applications:update")
@sudo_required
@require_http_methods(["GET", "POST"])
def application_tags(request: HttpRequest, org_id: UUID, application_id: UUID) -> HttpResponse:
    """Edit the tags policy conditions read (`principal.tags`)."""
    application = _application(request, application_id)
    formset = tags_formset(application.tags, request.POST or None)
    if request.method == "POST" and formset.is_valid():
        try:
            application_services.application_set_tags(
                application=application,
                tags=formset.tags,
                actor=request.user,
                request=request,
            )
        except ValidationError as error:
            formset.add_service_error(error)
        else:
            messages.success(request, f"Tags of {application.name} saved.")
            return redirect(application_url(application))
    return render(
        request,
        "organizations/iam/applications/application_tags.html",
        {"application": application, "formset": formset},
        status=400 if formset.is_bound else 200,
    )


@requires("iam:applications:delete")
@require_http_methods(["GET", "POST"])
def application_delete(request: HttpRequest, org_id: UUID, application_id: UUID) -> HttpResponse:
    application = _application(request, application_id)
    form = ConfirmNameForm(
        request.POST or None, expected=application.name, what="application name", field=CONFIRM_NAME
    )
    if request.method == "POST" and (
        save_form(
            form,
            lambda data: application_services.application_delete(
                application=application,
                confirm_name=data[CONFIRM_NAME],
                actor=request.user,
                request=request,
            ),
        )
    ):
        messages.success(request, f"Application {application.name} and its API keys deleted.")
        return redirect("organizations:application_list", org_id=org_id)
    return render(
        request,
        "organizations/iam/applications/application_delete.html",
        {
            "application": application,
            "form": form,
            "key_count": application.api_keys.count(),
        },
        status=400 if form.is_bound else 200,
    )


def _render_groups(
    request: HttpRequest,
    application: Application,
    *,
    status: int = 200,
    form: GroupPickForm | None = None,
) -> HttpResponse:
    if request.htmx:
        response = render(request, f"{DETAIL}#groups", _groups_context(request, application, form))
        return with_policies_panel(request, response, application)
    return render(request, DETAIL, _detail_context(request, application, form), status=status)


def _group_change(
    request: HttpRequest, application: Application, group: Group, *, add: bool
) -> HttpResponse | bool:
    """Add `application` to `group` or take it out: was it changed? With Preview, the
    access diff instead (the response, in place of the groups card)."""
    service = group_services.group_remove_application
    if add:
        service = group_services.group_add_application
    words = f"add {application.name} to" if add else f"remove {application.name} from"
    return save_or_preview(
        request,
        lambda: group_services.group_rules(group),
        partial(service, group=group, application=application, actor=request.user, request=request),
        title=f"{words} {group.name}",
        target="application-groups",
        cancel_url=application_url(application),
    )


@requires("iam:applications:update")
@sudo_required
@require_POST
def application_group_add(request: HttpRequest, org_id: UUID, application_id: UUID) -> HttpResponse:
    application = _application(request, application_id)
    form = GroupPickForm(
        request.POST,
        groups=application_selectors.addable_groups(application),
        auto_id="add-group-%s",
    )
    if form.is_valid():
        group = form.cleaned_data["group"]
        try:
            added = _group_change(request, application, group, add=True)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            if isinstance(added, HttpResponse):
                return added
            messages.success(request, f"{application.name} added to group {group.name}.")
            if request.htmx:
                return _render_groups(request, application)
            return redirect(application_url(application))
    return _render_groups(request, application, status=400, form=form)


@requires("iam:applications:update")
@require_POST
def application_group_remove(
    request: HttpRequest, org_id: UUID, application_id: UUID, group_id: UUID
) -> HttpResponse:
    application = _application(request, application_id)
    group = group_for(organization=request.organization, group_id=group_id)
    # A refusal (the delegation ceiling) propagates: `requires` answers it.
    removed = _group_change(request, application, group, add=False)
    if isinstance(removed, HttpResponse):
        return removed
    if removed:
        messages.success(request, f"{application.name} removed from group {group.name}.")
    else:
        messages.info(request, f"{application.name} was not in group {group.name}.")
    if request.htmx:
        return _render_groups(request, application)
    return redirect(application_url(application))
