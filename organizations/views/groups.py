"""Groups: list, create, page, rename, delete, members."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from iamportal.forms import ConfirmNameForm, save_form
from iamportal.fragments import csrf_input
from iamportal.request import paginate, search_term
from iamportal.widgets import pick_form
from organizations.forms.groups import GroupForm
from organizations.models import Application, Group, Membership
from organizations.selectors import groups as group_selectors
from organizations.selectors import people as people_selectors
from organizations.selectors.applications import application_for
from organizations.services import groups as group_services
from organizations.views.pickers import MEMBER_FIELDS, member_label
from policies.authz import can
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.previewed import save_or_preview
from policies.views.attachments import policies_panel


def _list_context(request: HttpRequest, form: GroupForm) -> dict[str, object]:
    q = search_term(request)
    page = paginate(request, group_selectors.groups_listed(request.organization, q))
    page.object_list = group_selectors.with_counts(page.object_list)  # the shown ones only
    return {
        "page": page,
        "form": form,
        "q": q,
        # Asked and reversed once per page rather than per row.
        "may_read": can(request, "iam:groups:read"),
        "detail_prefix": reverse("organizations:group_list", args=[request.organization.pk]),
    }


@requires("iam:groups:list")
@require_GET
def group_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    context = _list_context(request, GroupForm())
    if request.htmx and request.htmx.target == "group-results":
        return render(request, "organizations/iam/groups/list.html#results", context)
    return render(request, "organizations/iam/groups/list.html", context)


@requires("iam:groups:create")
@require_POST
def group_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    form = GroupForm(request.POST)
    if saved := save_form(
        form,
        lambda data: group_services.group_create(
            organization=request.organization,
            actor=request.user,
            name=data["name"],
            description=data["description"],
            request=request,
        ),
    ):
        group = saved.value
        messages.success(request, f"Group {group.name} created.")
        return redirect("organizations:group_detail", org_id=org_id, group_id=group.pk)
    context = _list_context(request, form)
    if request.htmx:
        return render(request, "organizations/iam/groups/list.html#create", context)
    return render(request, "organizations/iam/groups/list.html", context, status=400)


# A row's remove and preview buttons: a POST form to the members URL that swaps the
# members card.
_REMOVE_FORM = (
    '<form method="post" action="{url}" hx-post="{url}" hx-target="#group-members"'
    ' hx-swap="outerHTML">{csrf}<input type="hidden" name="{name}" value="{value}">'
    '<button type="submit" class="button small secondary" aria-label="Remove {label}">'
    'Remove</button> <button type="submit" name="preview" value="1" class="button small'
    ' secondary">Preview<span class="visually-hidden"> removing {label}</span></button></form>'
)


def _remove_form(context: dict[str, Any], name: str, pk: object, label: str) -> SafeString | str:
    if not context["may_update"]:
        return ""
    url, csrf = context["members_url"], context["csrf_input"]
    return format_html(_REMOVE_FORM, url=url, csrf=csrf, name=name, value=pk, label=label)


def _member_rows(members: Iterable[Membership], context: dict[str, Any]) -> SafeString:
    """The members table's rows, written in Python: a template loop with a link and a
    form per row cost ~0.15 ms a row. Every value is escaped by format_html."""
    prefix, may_read = context["user_prefix"], context["may_read_users"]

    def row(m: Membership) -> SafeString:
        email = m.user.email
        link = format_html('<a href="{}{}/">{}</a>', prefix, m.pk, email) if may_read else email
        return format_html(
            '<tr><td>{}</td><td>{}</td><td class="row-actions">{}</td></tr>',
            link,
            m.user.full_name or "—",
            _remove_form(context, "remove_user", m.pk, email),
        )

    return format_html_join("\n", "{}", ((row(m),) for m in members))


def _application_rows(applications: Iterable[Application], context: dict[str, Any]) -> SafeString:
    """The applications table's rows (as `_member_rows`)."""
    prefix, may_read = context["application_prefix"], context["may_read_applications"]

    def row(a: Application) -> SafeString:
        link = format_html('<a href="{}{}/">{}</a>', prefix, a.pk, a.name) if may_read else a.name
        return format_html(
            '<tr><td>{}</td><td class="row-actions">{}</td></tr>',
            link,
            _remove_form(context, "remove_application", a.pk, a.name),
        )

    return format_html_join("\n", "{}", ((row(a),) for a in applications))


def _group_form_html(form: GroupForm) -> SafeString | GroupForm:
    """The rename form, written by hand when it shows the stored values: Django's
    templates cost ~1 ms for its two fields. A refused form (errors, posted values)
    renders through Django's templates as before."""
    if form.is_bound:
        return form
    name, description = form["name"], form["description"]
    return format_html(
        '<div>\n    <label for="{}">{}:</label>\n'
        '<div class="helptext" id="{}_helptext">{}</div>\n'
        '<input type="text" name="name" value="{}" maxlength="{}" required'
        ' aria-describedby="{}_helptext" id="{}">\n</div>\n'
        '<div>\n    <label for="{}">{}:</label>\n'
        '<textarea name="description" cols="40" rows="2" maxlength="{}" id="{}">\n{}</textarea>\n'
        "</div>",
        name.id_for_label,
        name.label,
        name.id_for_label,
        name.help_text,
        name.value() or "",
        form.fields["name"].max_length,
        name.id_for_label,
        name.id_for_label,
        description.id_for_label,
        description.label,
        form.fields["description"].max_length,
        description.id_for_label,
        description.value() or "",
    )


def _user_pick(request: HttpRequest, group: Group) -> Form:
    """The add-user picker: it searches the users not in the group (never lists them)."""
    pick = pick_form(
        "add_user",
        group_selectors.addable_members(group),
        label="Add a user",
        search_url=reverse(
            "organizations:pick_group_members", args=[group.organization_id, group.pk]
        ),
        query=request.GET,
        placeholder="Type an email or a name",
        search_fields=MEMBER_FIELDS,
        auto_id="group-%s",
    )
    pick.fields["add_user"].label_from_instance = member_label
    return pick


def _detail_context(request: HttpRequest, group: Group, **extra: object) -> dict[str, object]:
    """What the page's fragments render (lazily: a fragment reads only its own part)."""
    members_q = search_term(request, "members_q")
    organization_id = group.organization_id
    context: dict[str, Any] = {
        "group": group,
        # Asked and reversed once per page rather than per row (25 members, applications).
        "may_update": can(request, "iam:groups:update"),
        "may_read_users": can(request, "iam:users:read"),
        "may_read_applications": can(request, "iam:applications:read"),
        "members_url": reverse("organizations:group_members", args=[organization_id, group.pk]),
        "detail_url": reverse("organizations:group_detail", args=[organization_id, group.pk]),
        "update_url": reverse("organizations:group_update", args=[organization_id, group.pk]),
        "user_prefix": reverse("organizations:user_list", args=[organization_id]),
        "application_prefix": reverse("organizations:application_list", args=[organization_id]),
        "csrf_input": csrf_input(request),
        # A page of 25 users (searchable), never the whole group.
        "members": paginate(request, group_selectors.group_members(group, members_q)),
        "members_q": members_q,
        "applications": group.applications.order_by("name"),
        "user_pick": _user_pick(request, group),
        "application_pick": pick_form(
            "add_application",
            group_selectors.addable_applications(group),
            label="Add an application",
            search_url=reverse(
                "organizations:pick_group_applications", args=[group.organization_id, group.pk]
            ),
            query=request.GET,
            placeholder="Type an application name",
            auto_id="group-%s",
        ),
        "form": GroupForm(instance=group, auto_id="group-%s"),
        **extra,
    }
    # Lazy: the members fragment alone (HTMX) does not render the profile and vice versa.
    context["member_rows"] = SimpleLazyObject(lambda: _member_rows(context["members"], context))
    context["application_rows"] = SimpleLazyObject(
        lambda: _application_rows(context["applications"], context)
    )
    context["form_html"] = SimpleLazyObject(lambda: _group_form_html(context["form"]))
    return context


def _page_context(request: HttpRequest, group: Group, **extra: object) -> dict[str, object]:
    """The whole page: the fragments and the policies panel (its queries run at once)."""
    return {
        **_detail_context(request, group, **extra),
        "policies_panel": policies_panel(request, group),
    }


@requires("iam:groups:read")
@require_GET
def group_detail(request: HttpRequest, org_id: UUID, group_id: UUID) -> HttpResponse:
    group = group_selectors.group_for(organization=request.organization, group_id=group_id)
    return render(request, "organizations/iam/groups/detail.html", _page_context(request, group))


@requires("iam:groups:update")
@require_POST
def group_update(request: HttpRequest, org_id: UUID, group_id: UUID) -> HttpResponse:
    group = group_selectors.group_for(organization=request.organization, group_id=group_id)
    form = GroupForm(request.POST, instance=group, auto_id="group-%s")
    if saved := save_form(
        form,
        lambda data: group_services.group_update(
            group=group,
            actor=request.user,
            name=data["name"],
            description=data["description"],
            request=request,
        ),
    ):
        group = saved.value
        messages.success(request, "Group saved.")
        if not request.htmx:
            return redirect("organizations:group_detail", org_id=org_id, group_id=group.pk)
        form = GroupForm(instance=group, auto_id="group-%s")
    if form.errors:
        group.refresh_from_db()  # headings show what is stored, not a refused name
    if request.htmx:
        return render(
            request,
            "organizations/iam/groups/detail.html#group-profile",
            _detail_context(request, group, form=form),
        )
    return render(
        request,
        "organizations/iam/groups/detail.html",
        _page_context(request, group, form=form),
        status=400,
    )


@requires("iam:groups:delete")
@refuses_self_lockout
@require_http_methods(["GET", "POST"])
def group_delete(request: HttpRequest, org_id: UUID, group_id: UUID) -> HttpResponse:
    """The confirmation page (type the name), and the deletion; with Preview, who loses
    what the group's policies gave its members (in place of the card)."""
    group = group_selectors.group_for(organization=request.organization, group_id=group_id)
    form = ConfirmNameForm(request.POST or None, expected=group.name, what="group name")
    if request.method == "POST" and form.is_valid():
        delete = partial(
            group_services.group_delete, group=group, actor=request.user, request=request
        )
        # A refusal (the delegation ceiling) propagates: `requires` answers it.
        deleted = save_or_preview(
            request,
            lambda: group_services.group_rules(group),
            delete,
            title=f"delete group {group.name}",
            target="group-delete",
            cancel_url=reverse("organizations:group_delete", args=[org_id, group.pk]),
        )
        if isinstance(deleted, HttpResponse):
            return deleted
        messages.success(request, f"Group {group.name} deleted.")
        return redirect("organizations:group_list", org_id=org_id)
    context = {"group": group, "form": form, "member_count": group.members.count()}
    if request.htmx:  # Cancel, or a refused Preview (htmx swaps only 2xx): the card alone
        return render(request, "organizations/iam/groups/delete.html#group-delete", context)
    return render(
        request,
        "organizations/iam/groups/delete.html",
        context,
        status=400 if form.is_bound else 200,
    )


def _members_response(request: HttpRequest, group: Group) -> HttpResponse:
    if request.htmx:
        return render(
            request,
            "organizations/iam/groups/detail.html#group-members",
            _detail_context(request, group),
        )
    return redirect("organizations:group_detail", org_id=group.organization_id, group_id=group.pk)


def _member_change(
    request: HttpRequest, group: Group
) -> tuple[str, str, Callable[..., bool]] | None:
    """What the post asks of the group: (its preview's title, its success message, the
    service with its arguments but `preview`), None when it names nobody. Http404: no
    such user or application in the organization."""
    organization, post = request.organization, request.POST
    where = {"group": group, "actor": request.user, "request": request}
    if user_id := post.get("add_user") or post.get("remove_user"):
        membership = people_selectors.user_for(organization=organization, membership_id=user_id)
        email, where["membership"] = membership.user.email, membership
        if post.get("add_user"):
            service = partial(group_services.group_add_member, **where)
            return f"add {email} to {group.name}", f"{email} added to {group.name}.", service
        service = partial(group_services.group_remove_member, **where)
        return f"remove {email} from {group.name}", f"{email} removed from {group.name}.", service
    if application_id := post.get("add_application") or post.get("remove_application"):
        application = application_for(organization=organization, application_id=application_id)
        name, where["application"] = application.name, application
        if post.get("add_application"):
            service = partial(group_services.group_add_application, **where)
            return f"add {name} to {group.name}", f"{name} added to {group.name}.", service
        service = partial(group_services.group_remove_application, **where)
        return f"remove {name} from {group.name}", f"{name} removed from {group.name}.", service
    return None


@requires("iam:groups:update")
@sudo_required
@refuses_self_lockout
@require_POST
def group_members(request: HttpRequest, org_id: UUID, group_id: UUID) -> HttpResponse:
    """Add (`add_user`, `add_application`) or remove (`remove_user`, `remove_application`)
    one principal; the member list fragment comes back for HTMX. With Preview, who gains
    or loses what through the group instead (in place of the card)."""
    group = group_selectors.group_for(organization=request.organization, group_id=group_id)
    try:
        asked = _member_change(request, group)
        if asked is None:
            messages.error(request, "Choose a user or an application.")
            return _members_response(request, group)
        title, message, service = asked
        saved = save_or_preview(
            request,
            lambda: group_services.group_rules(group),
            service,
            title=title,
            target="group-members",
            cancel_url=reverse("organizations:group_detail", args=[org_id, group.pk]),
        )
    except Http404:
        messages.error(request, "That user or application does not exist in this organization.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if isinstance(saved, HttpResponse):
            return saved
        messages.success(request, message)
    return _members_response(request, group)
