"""The attached-policies panel of a principal: a user (membership), group or application.

Every principal page includes `policies/_principal_policies.html` with the context from
`policies_panel(request, principal)`; its forms post here. HTMX gets the panel back;
a plain POST is redirected to the page it came from (or, refused, gets a small page
with the panel and its error).
"""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.sudo import sudo_required
from iamportal.forms import apply_errors
from iamportal.request import next_in_organization
from iamportal.widgets import pick_searches
from organizations.models import Application, Group, Membership, Organization
from organizations.selectors import organizations as organization_selectors
from policies.authz import can
from policies.forms.attachments import PolicyPickForm
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.models import Policy
from policies.previewed import save_or_preview
from policies.selectors import attachments as attachment_selectors
from policies.selectors import policies as policy_selectors
from policies.selectors.rules import compile_policy_rules
from policies.services import attachments as attachment_services
from policies.views.pages import (
    new_attach_form,
    page_context,
    page_template,
    page_url,
    render_attachments,
)

Principal = Membership | Group | Application

PANEL_TEMPLATE = "policies/_principal_policies.html"
# Where each kind's page lives: (URL name, kwarg of its id).
_PAGES: dict[str, tuple[str, str]] = {
    "user": ("organizations:user_detail", "membership_id"),
    "group": ("organizations:group_detail", "group_id"),
    "application": ("organizations:application_detail", "application_id"),
}


def principal_label(principal: Principal) -> str:
    if isinstance(principal, Membership):
        return principal.user.email
    return principal.name


def principal_for(*, organization: Organization, kind: str, principal_id: object) -> Principal:
    """A user (by membership id), group or application of the organization, else 404."""
    if kind == "user":
        return organization_selectors.member_for(
            organization=organization, membership_id=principal_id
        )
    models = {"group": Group, "application": Application}
    if kind not in models:
        raise Http404("No such principal.")
    return organization_selectors.get_or_404(
        models[kind].objects.select_related("organization"),
        "No such principal.",
        organization=organization,
        pk=principal_id,
    )


def principal_page_url(organization: Organization, principal: Principal) -> str:
    """The principal's own page."""
    name, kwarg = _PAGES[attachment_services.principal_kind(principal)]
    return reverse(name, kwargs={"org_id": organization.pk, kwarg: principal.pk})


def new_policy_pick_form(principal: Principal, data: Any = None) -> PolicyPickForm:
    """The panel's attach picker, searching the policies not attached to `principal`."""
    kind = attachment_services.principal_kind(principal)
    return PolicyPickForm(
        data,
        policies=attachment_selectors.attachable_policies(principal),
        search_url=reverse(
            "organizations:pick_principal_policies",
            args=[principal.organization_id, kind, principal.pk],
        ),
    )


def policies_panel(
    request: HttpRequest, principal: Principal, form: PolicyPickForm | None = None
) -> dict[str, Any]:
    """The context of the panel, under the one name `policies_panel`:
    `context["policies_panel"] = policies_panel(request, principal)`."""
    kind = attachment_services.principal_kind(principal)
    return {
        "kind": kind,
        "principal": principal,
        "label": principal_label(principal),
        "attachments": attachment_selectors.policies_attached_to(principal),
        "inherited": []
        if kind == "group"
        else attachment_selectors.policies_through_groups(principal),
        "form": form or pick_searches(new_policy_pick_form(principal), request.GET),
        # Decided and reversed once for the panel, not per row.
        "may_read": can(request, "iam:policies:read"),
        "may_attach": can(request, "iam:policies:attach"),
        "policy_prefix": reverse("policies:policy_list", args=[principal.organization_id]),
        # Where a plain POST returns: the page that drew the panel.
        "next": (
            request.POST.get("next") or principal_page_url(request.organization, principal)  # type: ignore[attr-defined]
        )
        if request.method == "POST"
        else request.get_full_path(),
    }


def with_policies_panel(
    request: HttpRequest, response: HttpResponse, principal: Membership | Application
) -> HttpResponse:
    """Append the principal's policies panel to an HTMX answer as an out-of-band swap:
    joining or leaving a group changes the policies it holds "through groups"."""
    panel = render_to_string(
        PANEL_TEMPLATE,
        {"policies_panel": policies_panel(request, principal), "panel_oob": True},
        request,
    )
    response.content += panel.encode()
    return response


def _next_url(request: HttpRequest, principal: Principal) -> str:
    page = principal_page_url(request.organization, principal)  # type: ignore[attr-defined]
    return next_in_organization(request, request.POST.get("next"), page)


def _render_panel(
    request: HttpRequest, principal: Principal, form: PolicyPickForm | None = None
) -> HttpResponse:
    """The panel for HTMX (200 even on errors: htmx does not swap 4xx), else a page."""
    context = {"policies_panel": policies_panel(request, principal, form)}
    if request.htmx:
        return render(request, PANEL_TEMPLATE, context)
    context["back_url"] = _next_url(request, principal)
    return render(request, "policies/principal_policies.html", context, status=400)


def _done(
    request: HttpRequest, principal: Principal, message: str, level: int = messages.SUCCESS
) -> HttpResponse:
    messages.add_message(request, level, message)
    if request.htmx:
        return _render_panel(request, principal)
    return redirect(_next_url(request, principal))


def _previewed(
    request: HttpRequest, policy: Policy, principal: Principal, *, attach: bool, target: str
) -> HttpResponse | bool:
    """Attach or detach `policy`; with Preview, the access diff it would make instead (a
    response in place of `target`, the card whose form posted), and confirmed, the
    change records that diff. Returns the service's answer (was anything changed), or
    the preview. A refusal (`ValidationError`) propagates."""

    service = attachment_services.policy_attach if attach else attachment_services.policy_detach
    verb, words = ("attach", "to") if attach else ("detach", "from")
    if target == "attachments":
        cancel = page_url(request.organization, policy)  # type: ignore[attr-defined]
    else:
        cancel = _next_url(request, principal)
    # Attaching adds the policy's rules to whoever it reaches; detaching takes them away.
    return save_or_preview(
        request,
        lambda: compile_policy_rules([policy.pk]),
        partial(service, policy=policy, principal=principal, actor=request.user, request=request),
        title=f"{verb} {policy.name} {words} {principal_label(principal)}",
        target=target,
        cancel_url=cancel,
    )


@requires("iam:policies:attach")
@sudo_required
@refuses_self_lockout
@require_POST
def principal_policy_attach(
    request: HttpRequest, org_id: UUID, kind: str, principal_id: UUID
) -> HttpResponse:
    principal = principal_for(
        organization=request.organization, kind=kind, principal_id=principal_id
    )
    form = new_policy_pick_form(principal, request.POST)
    if form.is_valid():
        policy: Policy = form.cleaned_data["policy"]
        try:
            previewed = _previewed(
                request, policy, principal, attach=True, target="principal-policies"
            )
            if isinstance(previewed, HttpResponse):
                return previewed
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return _done(
                request, principal, f"{policy.name} attached to {principal_label(principal)}."
            )
    return _render_panel(request, principal, form)


@requires("iam:policies:attach")
@sudo_required
@refuses_self_lockout
@require_POST
def principal_policy_detach(
    request: HttpRequest, org_id: UUID, kind: str, principal_id: UUID, policy_id: UUID
) -> HttpResponse:
    principal = principal_for(
        organization=request.organization, kind=kind, principal_id=principal_id
    )
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    previewed = _previewed(request, policy, principal, attach=False, target="principal-policies")
    if isinstance(previewed, HttpResponse):
        return previewed
    if previewed:
        return _done(
            request, principal, f"{policy.name} detached from {principal_label(principal)}."
        )
    return _done(request, principal, f"{policy.name} was not attached.", messages.INFO)


@requires("iam:policies:attach")
@sudo_required
@refuses_self_lockout
@require_POST
def policy_attach(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    """Attach the policy to the user, group or application chosen in one of its forms."""
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if policy.kind == Policy.Kind.GUARDRAIL:
        messages.error(request, "Guardrails apply to everyone but owners: they cannot be attached.")
        return render(
            request, "policies/guardrails.html", page_context(request, policy), status=400
        )
    form = new_attach_form(policy, request.organization, request.POST)
    if form.is_valid():
        principal = form.cleaned_data["principal"]
        try:
            previewed = _previewed(request, policy, principal, attach=True, target="attachments")
            if isinstance(previewed, HttpResponse):
                return previewed
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"{policy.name} attached to {principal_label(principal)}.")
            if request.htmx:
                return render_attachments(request, policy)
            return redirect(page_url(request.organization, policy))
    if request.htmx:
        return render_attachments(request, policy, form)
    context = page_context(request, policy)
    context["attach_form"] = form
    return render(request, page_template(policy), context, status=400)


@requires("iam:policies:attach")
@sudo_required
@refuses_self_lockout
@require_POST
def policy_detach(
    request: HttpRequest, org_id: UUID, policy_id: UUID, principal_id: UUID, kind: str = "user"
) -> HttpResponse:
    """Detach the policy from a user (by membership id), group or application."""
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    principal = principal_for(
        organization=request.organization, kind=kind, principal_id=principal_id
    )
    if isinstance(
        previewed := _previewed(request, policy, principal, attach=False, target="attachments"),
        HttpResponse,
    ):
        return previewed
    messages.success(request, f"{policy.name} detached from {principal_label(principal)}.")
    if request.htmx:
        return render_attachments(request, policy)
    return redirect(page_url(request.organization, policy))
