"""Policies: list, create, page, edit, duplicate, delete."""

from __future__ import annotations

from functools import partial
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from iamportal.forms import save_form
from iamportal.request import paginate
from policies.forms.policies import PolicyForm
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.models import Policy, PolicyAttachment
from policies.previewed import save_or_preview
from policies.selectors import policies as policy_selectors
from policies.selectors.rules import compile_policy_rules
from policies.services import policies as policy_services
from policies.views.pages import page_context, page_url, refuse_read_only_page


@requires("iam:policies:list")
@require_GET
def policy_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    page = paginate(request, policy_selectors.policies_with_counts(request.organization))
    return render(request, "policies/policy_list.html", {"page": page})


@requires("iam:policies:create")
@sudo_required
@require_http_methods(["GET", "POST"])
def policy_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    form = PolicyForm(request.POST or None)
    if request.method == "POST" and (
        saved := save_form(
            form,
            lambda data: policy_services.policy_create(
                organization=request.organization,
                **data,
                actor=request.user,
                request=request,
            ),
        )
    ):
        policy = saved.value
        messages.success(request, f"Policy {policy.name} created. Add its rules below.")
        return redirect("policies:policy_detail", org_id=org_id, policy_id=policy.pk)
    return render(
        request,
        "policies/policy_form.html",
        {"form": form, "policy": None},
        status=400 if form.is_bound else 200,
    )


@requires("iam:policies:read")
@require_GET
def policy_detail(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if policy.kind == Policy.Kind.GUARDRAIL:
        return redirect("policies:guardrails", org_id=org_id)
    context = page_context(request, policy)
    # The add-rule form comes when opened (HTMX, from the rules partial), or with `?add=rule`.
    context["add_open"] = request.GET.get("add") == "rule"
    context["add_form_later"] = not context["add_open"]
    return render(request, "policies/policy_detail.html", context)


@requires("iam:policies:update")
@sudo_required
@require_http_methods(["GET", "POST"])
def policy_update(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := refuse_read_only_page(request, policy):
        return refused
    if policy.kind == Policy.Kind.GUARDRAIL:
        return redirect("policies:guardrails", org_id=org_id)
    form = PolicyForm.for_policy(policy, request.POST or None)
    if request.method == "POST" and (
        save_form(
            form,
            lambda data: policy_services.policy_update(
                policy=policy, **data, actor=request.user, request=request
            ),
        )
    ):
        messages.success(request, "Policy saved.")
        return redirect("policies:policy_detail", org_id=org_id, policy_id=policy.pk)
    return render(
        request,
        "policies/policy_form.html",
        {"form": form, "policy": policy},
        status=400 if form.is_bound else 200,
    )


@requires("iam:policies:create")
@sudo_required
@require_POST
def policy_duplicate(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    try:
        copy = policy_services.policy_duplicate(
            policy=policy, organization=request.organization, actor=request.user, request=request
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(page_url(request.organization, policy))
    messages.success(request, f"Policy {policy.name} duplicated as {copy.name}.")
    return redirect("policies:policy_detail", org_id=org_id, policy_id=copy.pk)


@requires("iam:policies:delete")
@sudo_required
@refuses_self_lockout
@require_http_methods(["GET", "POST"])
def policy_delete(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    """The confirmation page and the deletion; with Preview, who loses what the policy
    gave (in place of the card)."""
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := refuse_read_only_page(request, policy):
        return refused
    if policy.kind == Policy.Kind.GUARDRAIL:
        return redirect("policies:guardrails", org_id=org_id)
    if request.method == "POST":
        delete = partial(
            policy_services.policy_delete, policy=policy, actor=request.user, request=request
        )
        # A refusal (the delegation ceiling) propagates: `requires` answers it.
        deleted = save_or_preview(
            request,
            lambda: compile_policy_rules([policy.pk]),
            delete,
            title=f"delete policy {policy.name}",
            target="policy-delete",
            cancel_url=reverse("policies:policy_delete", args=[org_id, policy.pk]),
        )
        if isinstance(deleted, HttpResponse):
            return deleted
        messages.success(request, f"Policy {policy.name} deleted.")
        return redirect("policies:policy_list", org_id=org_id)
    attachment_count = PolicyAttachment.objects.filter(policy=policy).count()
    return render(
        request,
        "policies/policy_delete.html",
        {"policy": policy, "attachment_count": attachment_count},
    )
