"""People: the users list, a user's page, member accounts, suspension, removal, ownership,
groups of a user."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from iamportal.forms import ConfirmNameForm, save_form
from iamportal.fragments import csrf_input
from iamportal.request import paginate, search_term
from iamportal.widgets import pick_form, pick_searches
from organizations.forms.people import MemberCreateForm
from organizations.forms.tags import tags_formset
from organizations.models import Group, Membership
from organizations.selectors import groups as group_selectors
from organizations.selectors import people as people_selectors
from organizations.selectors.api_keys import api_keys_of
from organizations.selectors.organizations import membership_for
from organizations.services import groups as group_services
from organizations.services import people as people_services
from organizations.views.invitations import issue_links, issued_links
from policies.authz import can
from policies.guards import requires, signed_in
from policies.lockout import refuses_self_lockout
from policies.previewed import save_or_preview
from policies.selectors.rules import compile_rules_for
from policies.views.attachments import policies_panel, with_policies_panel


def _filters(request: HttpRequest) -> people_selectors.UserFilters:
    get = request.GET
    return people_selectors.UserFilters(
        q=search_term(request),
        kind=get.get("kind", ""),
        status=get.get("status", ""),
        group=get.get("group", ""),
        mfa=get.get("mfa", ""),
    )


@requires("iam:users:list")
@require_GET
def user_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Search as you type and filters: the form's HTMX requests swap only the results."""
    organization = request.organization
    filters = _filters(request)
    context = {
        "page": paginate(request, people_selectors.UserList(organization, filters)),
        "filters": filters,
        "kinds": people_selectors.KINDS,
        "filtered": any(vars(filters).values()),
        # Asked and reversed once per page rather than per row (a user's page is the
        # list's address and the membership's id).
        "may_read": can(request, "iam:users:read"),
        "detail_prefix": reverse("organizations:user_list", args=[organization.pk]),
    }
    if request.htmx and request.htmx.target == "user-results":
        return render(request, "organizations/iam/users/list.html#results", context)
    return render(request, "organizations/iam/users/list.html", context)


def _group_chips(context: dict[str, Any]) -> SafeString:
    """The groups card's chips, written in Python: a template loop with a link and a form
    per group cost ~0.15 ms a group. Every value is escaped by format_html."""
    prefix, url, csrf = context["group_prefix"], context["groups_url"], context["csrf_input"]

    def chip(group: Group) -> SafeString:
        name = group.name
        link = (
            format_html('<a href="{}{}/">{}</a>', prefix, group.pk, name)
            if context["may_read_groups"]
            else name
        )
        form = ""
        if context["may_update"]:
            form = format_html(
                '\n      <form method="post" action="{0}"\n'
                '            hx-post="{0}" hx-target="#user-groups" hx-swap="outerHTML">\n'
                '        {1}<input type="hidden" name="remove" value="{2}">\n'
                '        <button type="submit" class="button small secondary"'
                ' aria-label="Remove from {3}">Remove</button>\n'
                '        <button type="submit" name="preview" value="1" class="button small'
                ' secondary">Preview<span class="visually-hidden"> removing from {3}</span>'
                "</button>\n      </form>",
                url,
                csrf,
                group.pk,
                name,
            )
        return format_html("<li>{}{}\n    </li>", link, form)

    return format_html_join("\n    ", "{}", ((chip(group),) for group in context["groups"]))


def _groups_context(request: HttpRequest, membership: Membership) -> dict[str, object]:
    """What the groups card (`#user-groups`) renders: the join picker searches the
    groups the user is not in (never lists them all)."""
    context: dict[str, Any] = {
        "subject": membership,
        "groups": list(membership.groups.order_by("name")),
        # Asked and reversed once for the card rather than per group.
        "may_read_groups": can(request, "iam:groups:read"),
        "may_update": can(request, "iam:users:update"),
        "groups_url": reverse(
            "organizations:user_groups", args=[membership.organization_id, membership.pk]
        ),
        "group_prefix": reverse("organizations:group_list", args=[membership.organization_id]),
        "csrf_input": csrf_input(request),
        "join_pick": pick_form(
            "add",
            group_selectors.groups_not_joined(membership),
            label="Add to group",
            search_url=reverse(
                "organizations:pick_user_groups", args=[membership.organization_id, membership.pk]
            ),
            query=request.GET,
            placeholder="Type a group name",
            auto_id="user-group-%s",
        ),
    }
    context["group_chips"] = SimpleLazyObject(lambda: _group_chips(context))
    return context


def _detail_context(request: HttpRequest, membership: Membership) -> dict[str, object]:
    """The whole page; it shows (and so consumes) the links issued just before."""
    return {
        **_groups_context(request, membership),
        "api_keys": api_keys_of(organization=request.organization, membership=membership),
        "is_self": membership.pk == request.membership.pk,
        "may_act": people_services.may_act_on(membership, request.membership),
        "issued": issued_links(request),
        "policies_panel": policies_panel(request, membership),
    }


@requires("iam:users:read")
@require_GET
@never_cache
def user_detail(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    membership = people_selectors.user_for(
        organization=request.organization, membership_id=membership_id
    )
    return render(
        request, "organizations/iam/users/detail.html", _detail_context(request, membership)
    )


@requires("iam:users:create")
@require_http_methods(["GET", "POST"])
def member_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    form = MemberCreateForm(request.POST or None, organization=organization)
    form.fields["groups"].widget.search_url = reverse(
        "organizations:pick_member_groups", args=[organization.pk]
    )
    pick_searches(form, request.GET)
    if request.method == "POST" and (
        saved := save_form(
            form,
            lambda data: people_services.member_create(
                organization=organization,
                actor=request.user,
                email=data["email"],
                full_name=data["full_name"],
                groups=data["groups"],
                request=request,
            ),
        )
    ):
        created = saved.value
        membership = created.membership
        # The password link is shown once, like a secret; it was also emailed.
        issue_links(request, [(membership.user.email, created.link)])
        messages.success(
            request, f"Member {membership.user.email} created; a password link was emailed."
        )
        return redirect("organizations:user_detail", org_id=org_id, membership_id=membership.pk)
    return render(
        request,
        "organizations/iam/users/create.html",
        {"form": form},
        status=400 if form.is_bound else 200,
    )


def _membership_action(
    request: HttpRequest, membership_id: UUID, action: Callable[[Membership], str]
) -> HttpResponse:
    """Run a service on a user of the organization; refusals come back as messages."""
    membership = people_selectors.user_for(
        organization=request.organization, membership_id=membership_id
    )
    try:
        message = action(membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, message)
    return redirect(
        "organizations:user_detail", org_id=request.organization.pk, membership_id=membership_id
    )


@requires("iam:users:suspend")
@require_POST
def user_suspend(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    """Suspend a user; with Preview, what they lose (the actions of their own rules) in
    place of the Suspend form, nothing saved."""
    membership = people_selectors.user_for(
        organization=request.organization, membership_id=membership_id
    )
    email = membership.user.email
    detail = reverse("organizations:user_detail", args=[org_id, membership.pk])
    suspend = partial(
        people_services.membership_suspend,
        membership=membership,
        actor=request.membership,
        request=request,
    )
    try:
        suspended = save_or_preview(
            request,
            lambda: compile_rules_for(membership),
            suspend,
            title=f"suspend {email}",
            target="user-suspend",
            cancel_url=detail,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if isinstance(suspended, HttpResponse):
            return suspended
        messages.success(request, f"{email} is suspended: every request and API key is refused.")
    return redirect(detail)


@requires("iam:users:suspend")
@require_POST
def user_reactivate(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    def reactivate(membership: Membership) -> str:
        people_services.membership_reactivate(
            membership=membership, actor=request.membership, request=request
        )
        return f"{membership.user.email} is active again."

    return _membership_action(request, membership_id, reactivate)


@requires("iam:users:reset-password")
@sudo_required
@require_POST
def user_password_link(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    def send(membership: Membership) -> str:
        link = people_services.member_send_password_link(
            membership=membership, actor=request.user, request=request
        )
        issue_links(request, [(membership.user.email, link)])
        return f"A password link was emailed to {membership.user.email}."

    return _membership_action(request, membership_id, send)


@requires("iam:users:update")
@sudo_required
@require_POST
def user_make_owner(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    def grant(membership: Membership) -> str:
        people_services.owner_grant(
            membership=membership, actor=request.membership, request=request
        )
        return f"{membership.user.email} is now an owner."

    return _membership_action(request, membership_id, grant)


@requires("iam:users:update")
@sudo_required
@require_http_methods(["GET", "POST"])
def user_tags(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    """Edit the tags policy conditions read (`principal.tags`): of someone else, and of an
    owner only as an owner (the service refuses the rest; the page is not offered)."""
    membership = people_selectors.user_for(
        organization=request.organization, membership_id=membership_id
    )
    detail = redirect("organizations:user_detail", org_id=org_id, membership_id=membership_id)
    if not people_services.may_act_on(membership, request.membership):
        who = "your own" if membership.pk == request.membership.pk else "an owner's"
        messages.error(request, f"You cannot change {who} tags.")
        return detail
    formset = tags_formset(membership.tags, request.POST or None)
    if request.method == "POST" and formset.is_valid():
        try:
            people_services.membership_set_tags(
                membership=membership,
                tags=formset.tags,
                actor=request.membership,
                request=request,
            )
        except ValidationError as error:
            formset.add_service_error(error)
        else:
            messages.success(request, f"Tags of {membership.user.email} saved.")
            return detail
    return render(
        request,
        "organizations/iam/users/tags.html",
        {"subject": membership, "formset": formset},
        status=400 if formset.is_bound else 200,
    )


@requires("iam:users:remove")
@require_http_methods(["GET", "POST"])
def user_remove(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    membership = people_selectors.user_for(
        organization=request.organization, membership_id=membership_id
    )
    form = ConfirmNameForm(
        request.POST or None, expected=membership.user.email, what="user's email address"
    )
    if request.method == "POST" and (
        save_form(
            form,
            lambda _data: people_services.membership_remove(
                membership=membership, actor=request.membership, request=request
            ),
        )
    ):
        messages.success(request, f"{membership.user.email} was removed.")
        return redirect("organizations:user_list", org_id=org_id)
    return render(
        request,
        "organizations/iam/users/remove.html",
        {"subject": membership, "form": form},
        status=400 if form.is_bound else 200,
    )


def _join_or_leave(
    request: HttpRequest, membership: Membership, group: Group, *, add: bool
) -> HttpResponse | None:
    """Add `membership` to `group` or take it out; with Preview, the access diff instead
    (the response). A refusal (the delegation ceiling) propagates: `requires` answers it."""
    email = membership.user.email
    service = group_services.group_add_member if add else group_services.group_remove_member
    saved = save_or_preview(
        request,
        lambda: group_services.group_rules(group),
        partial(service, group=group, membership=membership, actor=request.user, request=request),
        title=f"add {email} to {group.name}" if add else f"remove {email} from {group.name}",
        target="user-groups",
        cancel_url=reverse(
            "organizations:user_detail", args=[membership.organization_id, membership.pk]
        ),
    )
    return saved if isinstance(saved, HttpResponse) else None


@requires("iam:users:update")
@sudo_required
@refuses_self_lockout
@require_POST
def user_groups(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    """Add the user to a group (`add`) or take them out of one (`remove`), from their page;
    with Preview, who gains or loses what through the group (in place of the card)."""
    membership = people_selectors.user_for(
        organization=request.organization, membership_id=membership_id
    )
    group_id = request.POST.get("add") or request.POST.get("remove")
    if not group_id:
        messages.error(request, "Choose a group.")
    else:
        try:
            group = group_selectors.group_for(organization=request.organization, group_id=group_id)
        except Http404:
            messages.error(request, "That group does not exist in this organization.")
        else:
            add = bool(request.POST.get("add"))
            if previewed := _join_or_leave(request, membership, group, add=add):
                return previewed
            messages.success(request, f"{'Added to' if add else 'Removed from'} {group.name}.")
    if request.htmx:
        response = render(
            request,
            "organizations/iam/users/detail.html#user-groups",
            _groups_context(request, membership),
        )
        return with_policies_panel(request, response, membership)
    return redirect("organizations:user_detail", org_id=org_id, membership_id=membership_id)


@signed_in
@require_http_methods(["GET", "POST"])
def organization_leave(request: HttpRequest, org_id: UUID) -> HttpResponse:
    membership = membership_for(user=request.user, organization_id=org_id)
    request.organization = membership.organization
    request.membership = membership
    error = ""
    if request.method == "POST":
        try:
            people_services.membership_leave(membership=membership, request=request)
        except ValidationError as refused:
            error = " ".join(refused.messages)
        else:
            messages.success(request, f"You left {membership.organization.name}.")
            return redirect("organizations:list")
    return render(
        request,
        "organizations/iam/users/leave.html",
        {"subject": membership, "error": error},
        status=400 if error else 200,
    )


@signed_in
@sudo_required
@require_POST
def owner_step_down(request: HttpRequest, org_id: UUID) -> HttpResponse:
    membership = membership_for(user=request.user, organization_id=org_id)
    try:
        people_services.owner_step_down(membership=membership, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("organizations:user_detail", org_id=org_id, membership_id=membership.pk)
    messages.success(request, f"You are no longer an owner of {membership.organization.name}.")
    # Without ownership the user's own page may be out of reach: go somewhere always allowed.
    return redirect("organizations:list")
