"""Rules: add, edit in place, move, remove; refused input comes back inline and nothing is
saved."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from iamportal.forms import apply_errors
from policies import preview
from policies.catalogue import GUARDRAIL_EDIT
from policies.evaluator import CompiledRule
from policies.forms.policies import lines_of
from policies.forms.rules import RESOURCES_MAX, resource_types_of
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.models import Policy, Rule
from policies.selectors import policies as policy_selectors
from policies.selectors.rules import compile_stored_rule
from policies.services import guardrails as guardrail_services
from policies.services import rules as rule_services
from policies.views.pages import (
    after_rule_write,
    new_rule_form,
    page_url,
    refuse_read_only_page,
    render_rules,
)


@requires("iam:policies:read")
@require_GET
def rule_list(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    """The rules partial, e.g. to cancel an edit in place; the page without HTMX."""
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if not request.htmx:
        return redirect(page_url(request.organization, policy))
    return render_rules(request, policy)


def save_rule(
    request: HttpRequest, policy: Policy | None, rule: Rule | None = None
) -> HttpResponse:
    """Validate the posted rule and add it (to `policy`, or to the guardrails when None)
    or change `rule`; refused input comes back inline and nothing is saved. With Preview,
    the access diff it would make instead (policies.preview), and confirmed, the save
    records that diff."""
    form = new_rule_form(request, policy, data=request.POST, rule=rule)
    if form.is_valid():

        def save(diff: Mapping[str, Any] | None = None) -> Rule:
            values = {**form.rule_values(), "actor": request.user, "request": request}
            if rule is not None:
                return rule_services.rule_update(rule=rule, **values, preview=diff)
            if policy is None:  # the organization's first guardrail rule
                return guardrail_services.guardrail_rule_add(
                    organization=request.organization, **values, preview=diff
                )
            return rule_services.rule_add(policy=policy, **values, preview=diff)

        try:
            before = compile_stored_rule(rule) if rule is not None else []
            if asked := preview.asked(request):
                # A rule change never moves whom a policy reaches: the preview's fast path.
                diff = preview.access_diff(
                    request, before, lambda: compile_stored_rule(save()), same_reach=True
                )
                if asked == "preview" or not preview.confirms(request, diff):
                    return _preview(request, policy, rule, diff, stale=asked == "confirm")
                saved = save(diff.audit_data())
            else:
                saved = save()
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return after_rule_write(
                request, saved.policy, "Rule saved.", warning=form.condition_warning()
            )
    if rule is not None:
        return render_rules(request, policy, status=400, editing=rule, edit_form=form)
    return render_rules(request, policy, status=400, add_form=form)


def _preview(
    request: HttpRequest,
    policy: Policy | None,
    rule: Rule | None,
    diff: preview.AccessDiff,
    *,
    stale: bool = False,
    title: str = "",
) -> HttpResponse:
    """The diff in place of the rules card."""
    if not title:
        title = f"edit rule {rule.position}" if rule is not None else "add a rule"
    if policy is not None and policy.kind != Policy.Kind.GUARDRAIL:
        cancel = reverse("policies:rule_list", args=[request.organization.pk, policy.pk])
    else:
        cancel = page_url(request.organization, policy)
    return preview.render_preview(
        request, diff, title=title, target="rules", cancel_url=cancel, stale=stale
    )


@requires("iam:policies:update")
@sudo_required
@refuses_self_lockout
@require_POST
def rule_add(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := refuse_read_only_page(request, policy):
        return refused
    return save_rule(request, policy)


@requires("iam:policies:update")
@sudo_required
@refuses_self_lockout
@require_http_methods(["GET", "POST"])
def rule_update(request: HttpRequest, org_id: UUID, policy_id: UUID, rule_id: UUID) -> HttpResponse:
    """The rule's form in place of its row (HTMX) or on its page, and its saving."""
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := refuse_read_only_page(request, policy):
        return refused
    rule = policy_selectors.rule_for(policy=policy, rule_id=rule_id)
    if request.method == "POST":
        return save_rule(request, policy, rule)
    return render_rules(
        request, policy, editing=rule, edit_form=new_rule_form(request, policy, rule=rule)
    )


@requires("iam:policies:update")
@sudo_required
@require_POST
def rule_move(request: HttpRequest, org_id: UUID, policy_id: UUID, rule_id: UUID) -> HttpResponse:
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := refuse_read_only_page(request, policy):
        return refused
    rule = policy_selectors.rule_for(policy=policy, rule_id=rule_id)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        messages.error(request, "Choose to move the rule up or down.")
        return render_rules(request, policy, status=400)
    rule_services.rule_move(rule=rule, direction=direction, actor=request.user, request=request)
    return after_rule_write(request, policy, f"Rule moved {direction}.")


@requires("iam:policies:update")
@sudo_required
@refuses_self_lockout
@require_POST
def rule_remove(request: HttpRequest, org_id: UUID, policy_id: UUID, rule_id: UUID) -> HttpResponse:
    policy = policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := refuse_read_only_page(request, policy):
        return refused
    rule = policy_selectors.rule_for(policy=policy, rule_id=rule_id)

    def remove(diff: Mapping[str, Any] | None = None) -> list[CompiledRule]:
        rule_services.rule_remove(rule=rule, actor=request.user, request=request, preview=diff)
        return []

    # A refusal (the delegation ceiling) propagates: `requires` answers it.
    if asked := preview.asked(request):
        diff = preview.access_diff(request, compile_stored_rule(rule), remove, same_reach=True)
        if asked == "preview" or not preview.confirms(request, diff):
            title = f"remove rule {rule.position}"
            return _preview(request, policy, rule, diff, stale=asked == "confirm", title=title)
        remove(diff.audit_data())
    else:
        remove()
    return after_rule_write(request, policy, f"Rule {rule.position} removed.")


# The id prefix of a rule form (RuleForm.form_id): the picker's results keep its ids.
_FORM_ID = re.compile(r"^(new-rule|rule-[0-9a-f-]{36})$")


def _resource_options(request: HttpRequest) -> HttpResponse:
    """The picker's checkboxes: the resources ticked so far (kept ticked), then up to
    `PICKER_MATCHES` others matching the search, of the types the typed actions name."""
    form_id = request.GET.get("form_id", "")
    if not _FORM_ID.match(form_id):
        form_id = "new-rule"
    organization = request.organization
    ticked = request.GET.getlist("resources")[:RESOURCES_MAX]
    chosen = policy_selectors.chosen_resources(organization, ticked)
    patterns = [*request.GET.getlist("permission_sets"), *lines_of(request.GET.get("actions", ""))]
    q = request.GET.get("resource_q", "")[:200]
    matches, more = policy_selectors.resource_matches(
        organization, q, types=resource_types_of(patterns), exclude=[r.pk for r in chosen]
    )
    context = {"form_id": form_id, "chosen": chosen, "matches": matches, "more": more, "q": q}
    return render(request, "policies/_resource_options.html", context)


@requires("iam:policies:update")
@require_GET
def rule_resources(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    """Search as you type in the rule editor's resource picker (an HTML partial)."""
    policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)
    return _resource_options(request)


@requires(GUARDRAIL_EDIT)
@require_GET
def guardrail_rule_resources(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The resource picker's search for a guardrail rule."""
    return _resource_options(request)
