"""The policy editor: policies, their rules, attachments, the guardrails and the
condition tester. Views parse, call a service, render; HTMX gets the page's partials."""

from __future__ import annotations

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
from iamportal.ratelimit import within_limit
from iamportal.request import paginate
from organizations.models import Organization
from organizations.selectors import projects as project_selectors
from policies import selectors, services
from policies.attachment_views import principal_for, principal_label
from policies.authz import authorize, deny_response, principal_of, request_facts
from policies.catalogue import GUARDRAIL_EDIT
from policies.conditions import (
    CompiledCondition,
    ConditionContext,
    ConditionError,
    ConditionEvaluationError,
    compile_condition,
)
from policies.forms import AttachForm, ConditionForm, ConditionTestForm, PolicyForm, RuleForm
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.models import Policy, PolicyAttachment, Rule


def _edit_action(policy: Policy | None) -> str:
    """The permission that changes `policy`'s rules. Guardrails bind every non-owner, so
    their own permission is one no wildcard or managed policy grants."""
    if policy is None or policy.kind == Policy.Kind.GUARDRAIL:
        return GUARDRAIL_EDIT
    return "iam:policies:update"


def _refuse_managed(request: HttpRequest, policy: Policy) -> HttpResponse | None:
    """A 403 page for a write to a managed policy, which only the catalogue may change, or
    to the guardrails by someone without their permission."""
    if policy.kind == Policy.Kind.GUARDRAIL:
        decision = authorize(request, GUARDRAIL_EDIT)
        return None if decision.allowed else deny_response(request, decision)
    if not policy.is_managed:
        return None
    messages.error(
        request, f"{policy.name} is a managed policy: it is read-only. Duplicate it to edit a copy."
    )
    return render(request, "403.html", status=403)


# ------------------------------------------------------------------------ contexts


def _page_template(policy: Policy | None) -> str:
    if policy is None or policy.kind == Policy.Kind.GUARDRAIL:
        return "policies/guardrails.html"
    return "policies/policy_detail.html"


def _page_url(organization: Organization, policy: Policy | None) -> str:
    """The page showing `policy`'s rules: the guardrails page for the guardrail (or None)."""
    if policy is None or policy.kind == Policy.Kind.GUARDRAIL:
        return reverse("policies:guardrails", args=[organization.pk])
    return reverse("policies:policy_detail", args=[organization.pk, policy.pk])


def _rule_form(
    request: HttpRequest, policy: Policy | None, *, data: Any = None, rule: Rule | None = None
) -> RuleForm:
    return RuleForm(
        data,
        projects=project_selectors.projects_of(request.organization),
        is_guardrail=policy is None or policy.kind == Policy.Kind.GUARDRAIL,
        rule=rule,
    )


def _test_form(rule_form: RuleForm) -> ConditionTestForm:
    """The tester's fields, rendered inside `rule_form` and sharing its id prefix."""
    return ConditionTestForm(auto_id=f"{rule_form.form_id}-%s")


def _rules_context(
    request: HttpRequest,
    policy: Policy | None,
    *,
    add_form: RuleForm | None = None,
    editing: Rule | None = None,
    edit_form: RuleForm | None = None,
) -> dict[str, Any]:
    organization = request.organization
    if policy is not None and policy.kind != Policy.Kind.GUARDRAIL:
        add_url = reverse("policies:rule_add", args=[organization.pk, policy.pk])
    else:
        add_url = reverse("policies:guardrail_rule_add", args=[organization.pk])
    add_form = add_form or _rule_form(request, policy)
    return {
        "policy": policy,
        "page_url": _page_url(organization, policy),
        "rules": selectors.ordered_rules(policy),
        "add_url": add_url,
        "add_form": add_form,
        "add_test_form": _test_form(add_form),
        "editing": editing,
        "edit_form": edit_form,
        "edit_test_form": _test_form(edit_form) if edit_form else None,
        "edit_action": _edit_action(policy),
    }


def _page_context(request: HttpRequest, policy: Policy | None, **rules: Any) -> dict[str, Any]:
    context = _rules_context(request, policy, **rules)
    if policy is not None and policy.kind != Policy.Kind.GUARDRAIL:
        context.update(_attachments_context(request, policy))
    return context


def _attachments_context(
    request: HttpRequest, policy: Policy, attach_form: AttachForm | None = None
) -> dict[str, Any]:
    organization = request.organization
    return {
        "policy": policy,
        "attachments": selectors.attachments_of(policy, organization),
        "attach_form": attach_form or _attach_form(policy, organization),
    }


def _attach_form(policy: Policy, organization: Organization, data: Any = None) -> AttachForm:
    return AttachForm(
        data,
        memberships=selectors.attachable_members(policy, organization),
        groups=selectors.attachable_groups(policy, organization),
        applications=selectors.attachable_applications(policy, organization),
    )


def _render_rules(
    request: HttpRequest, policy: Policy | None, *, status: int = 200, **rules: Any
) -> HttpResponse:
    """The rules partial for HTMX, the whole page otherwise (400 when a form is refused)."""
    if request.htmx:
        context = _rules_context(request, policy, **rules)
        return render(request, "policies/rules.html#rules", context)
    return render(
        request, _page_template(policy), _page_context(request, policy, **rules), status=status
    )


def _after_rule_write(
    request: HttpRequest, policy: Policy, message: str, *, warning: str | None = None
) -> HttpResponse:
    messages.success(request, message)
    if warning:  # a saved rule that may not do what its author meant
        messages.warning(request, warning)
    if request.htmx:
        return _render_rules(request, policy)
    return redirect(_page_url(request.organization, policy))


# ------------------------------------------------------------------------ policies


@requires("iam:policies:list")
@require_GET
def policy_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    page = paginate(request, selectors.policies_with_counts(request.organization))
    return render(request, "policies/policy_list.html", {"page": page})


@requires("iam:policies:create")
@sudo_required
@require_http_methods(["GET", "POST"])
def policy_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    form = PolicyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            policy = services.policy_create(
                organization=request.organization,
                **form.cleaned_data,
                actor=request.user,
                request=request,
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
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
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if policy.kind == Policy.Kind.GUARDRAIL:
        return redirect("policies:guardrails", org_id=org_id)
    return render(request, "policies/policy_detail.html", _page_context(request, policy))


@requires("iam:policies:update")
@sudo_required
@require_http_methods(["GET", "POST"])
def policy_update(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := _refuse_managed(request, policy):
        return refused
    if policy.kind == Policy.Kind.GUARDRAIL:
        return redirect("policies:guardrails", org_id=org_id)
    form = PolicyForm.for_policy(policy, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.policy_update(
                policy=policy, **form.cleaned_data, actor=request.user, request=request
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
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
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    try:
        copy = services.policy_duplicate(
            policy=policy, organization=request.organization, actor=request.user, request=request
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(_page_url(request.organization, policy))
    messages.success(request, f"Policy {policy.name} duplicated as {copy.name}.")
    return redirect("policies:policy_detail", org_id=org_id, policy_id=copy.pk)


@requires("iam:policies:delete")
@sudo_required
@refuses_self_lockout
@require_http_methods(["GET", "POST"])
def policy_delete(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := _refuse_managed(request, policy):
        return refused
    if policy.kind == Policy.Kind.GUARDRAIL:
        return redirect("policies:guardrails", org_id=org_id)
    if request.method == "POST":
        services.policy_delete(policy=policy, actor=request.user, request=request)
        messages.success(request, f"Policy {policy.name} deleted.")
        return redirect("policies:policy_list", org_id=org_id)
    attachment_count = PolicyAttachment.objects.filter(policy=policy).count()
    return render(
        request,
        "policies/policy_delete.html",
        {"policy": policy, "attachment_count": attachment_count},
    )


# --------------------------------------------------------------------------- rules


@requires("iam:policies:read")
@require_GET
def rule_list(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    """The rules partial, e.g. to cancel an edit in place; the page without HTMX."""
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if not request.htmx:
        return redirect(_page_url(request.organization, policy))
    return _render_rules(request, policy)


def _save_rule(
    request: HttpRequest, policy: Policy | None, rule: Rule | None = None
) -> HttpResponse:
    """Validate the posted rule and add it (to `policy`, or to the guardrails when None)
    or change `rule`; refused input comes back inline and nothing is saved."""
    form = _rule_form(request, policy, data=request.POST, rule=rule)
    if form.is_valid():
        try:
            if rule is not None:
                services.rule_update(
                    rule=rule, **form.rule_values(), actor=request.user, request=request
                )
            elif policy is None or policy.kind == Policy.Kind.GUARDRAIL:
                rule = services.guardrail_rule_add(
                    organization=request.organization,
                    **form.rule_values(),
                    actor=request.user,
                    request=request,
                )
                policy = rule.policy
            else:
                services.rule_add(
                    policy=policy, **form.rule_values(), actor=request.user, request=request
                )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return _after_rule_write(
                request, policy, "Rule saved.", warning=form.condition_warning()
            )
    if rule is not None:
        return _render_rules(request, policy, status=400, editing=rule, edit_form=form)
    return _render_rules(request, policy, status=400, add_form=form)


@requires("iam:policies:update")
@sudo_required
@refuses_self_lockout
@require_POST
def rule_add(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := _refuse_managed(request, policy):
        return refused
    return _save_rule(request, policy)


@requires("iam:policies:update")
@sudo_required
@refuses_self_lockout
@require_http_methods(["GET", "POST"])
def rule_update(request: HttpRequest, org_id: UUID, policy_id: UUID, rule_id: UUID) -> HttpResponse:
    """The rule's form in place of its row (HTMX) or on its page, and its saving."""
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := _refuse_managed(request, policy):
        return refused
    rule = selectors.rule_for(policy=policy, rule_id=rule_id)
    if request.method == "POST":
        return _save_rule(request, policy, rule)
    return _render_rules(
        request, policy, editing=rule, edit_form=_rule_form(request, policy, rule=rule)
    )


@requires("iam:policies:update")
@sudo_required
@require_POST
def rule_move(request: HttpRequest, org_id: UUID, policy_id: UUID, rule_id: UUID) -> HttpResponse:
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := _refuse_managed(request, policy):
        return refused
    rule = selectors.rule_for(policy=policy, rule_id=rule_id)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        messages.error(request, "Choose to move the rule up or down.")
        return _render_rules(request, policy, status=400)
    services.rule_move(rule=rule, direction=direction, actor=request.user, request=request)
    return _after_rule_write(request, policy, f"Rule moved {direction}.")


@requires("iam:policies:update")
@sudo_required
@refuses_self_lockout
@require_POST
def rule_remove(request: HttpRequest, org_id: UUID, policy_id: UUID, rule_id: UUID) -> HttpResponse:
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if refused := _refuse_managed(request, policy):
        return refused
    rule = selectors.rule_for(policy=policy, rule_id=rule_id)
    services.rule_remove(rule=rule, actor=request.user, request=request)
    return _after_rule_write(request, policy, f"Rule {rule.position} removed.")


# ---------------------------------------------------------------------- guardrails


@requires("iam:policies:read")
@require_GET
def guardrails(request: HttpRequest, org_id: UUID) -> HttpResponse:
    policy = selectors.guardrail_of(request.organization)
    return render(request, "policies/guardrails.html", _page_context(request, policy))


@requires(GUARDRAIL_EDIT)
@sudo_required
@refuses_self_lockout
@require_POST
def guardrail_rule_add(request: HttpRequest, org_id: UUID) -> HttpResponse:
    return _save_rule(request, selectors.guardrail_of(request.organization))


# --------------------------------------------------------------------- attachments


def _render_attachments(
    request: HttpRequest, policy: Policy, attach_form: AttachForm | None = None
) -> HttpResponse:
    context = _attachments_context(request, policy, attach_form)
    return render(request, "policies/policy_detail.html#attachments", context)


@requires("iam:policies:attach")
@sudo_required
@refuses_self_lockout
@require_POST
def policy_attach(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    """Attach the policy to the user, group or application chosen in one of its forms."""
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    if policy.kind == Policy.Kind.GUARDRAIL:
        messages.error(request, "Guardrails apply to everyone but owners: they cannot be attached.")
        return render(
            request, "policies/guardrails.html", _page_context(request, policy), status=400
        )
    form = _attach_form(policy, request.organization, request.POST)
    if form.is_valid():
        principal = form.cleaned_data["principal"]
        try:
            services.policy_attach(
                policy=policy, principal=principal, actor=request.user, request=request
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"{policy.name} attached to {principal_label(principal)}.")
            if request.htmx:
                return _render_attachments(request, policy)
            return redirect(_page_url(request.organization, policy))
    if request.htmx:
        return _render_attachments(request, policy, form)
    context = _page_context(request, policy)
    context["attach_form"] = form
    return render(request, _page_template(policy), context, status=400)


@requires("iam:policies:attach")
@sudo_required
@refuses_self_lockout
@require_POST
def policy_detach(
    request: HttpRequest, org_id: UUID, policy_id: UUID, principal_id: UUID, kind: str = "user"
) -> HttpResponse:
    """Detach the policy from a user (by membership id), group or application."""
    policy = selectors.policy_for(organization=request.organization, policy_id=policy_id)
    principal = principal_for(
        organization=request.organization, kind=kind, principal_id=principal_id
    )
    services.policy_detach(policy=policy, principal=principal, actor=request.user, request=request)
    messages.success(request, f"{policy.name} detached from {principal_label(principal)}.")
    if request.htmx:
        return _render_attachments(request, policy)
    return redirect(_page_url(request.organization, policy))


# --------------------------------------------------------------- condition tester


def _evaluate(
    condition: CompiledCondition, facts: dict[str, Any], request: HttpRequest
) -> dict[str, Any]:
    """The condition's value for one set of facts, or the error that fails it closed."""
    principal = principal_of(request.membership)
    context = ConditionContext(**facts, principal_type=principal.type, principal_id=principal.id)
    try:
        value = condition.evaluate(context)
    except ConditionEvaluationError as error:
        return {"facts": facts, "error": str(error)}
    return {"facts": facts, "value": value}


# Each test compiles and runs a condition: bound what one editor can make the workers do.
CONDITION_TESTS_PER_MINUTE = 30


@requires("iam:policies:update")
@require_POST
def condition_test(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Evaluate the condition of a rule form against this request and typed-in values.

    Reads the rule form's own fields, so the button sits inside that form; without HTMX
    it shows the result on its own page. Only rule editors may, and each at most
    `CONDITION_TESTS_PER_MINUTE` times a minute.
    """
    form = ConditionForm(request.POST)
    test_form = ConditionTestForm(request.POST)
    context: dict[str, Any] = {"form": form, "test_form": test_form, "results": []}
    template = "policies/condition_test.html"
    key = f"condition_test:{request.user.pk}"
    if not within_limit(key, limit=CONDITION_TESTS_PER_MINUTE, window=60):
        context["throttled"] = (
            f"Too many condition tests: at most {CONDITION_TESTS_PER_MINUTE} a minute. "
            "Wait a minute, then test again."
        )
        if request.htmx:  # htmx swaps only 2xx answers: show the message where results go
            return render(request, f"{template}#result", context)
        response = render(request, template, context, status=429)
        response["Retry-After"] = "60"
        return response
    if form.is_valid() and test_form.is_valid():
        source = form.cleaned_data["condition"]
        context["condition"] = source
        if source:
            try:
                condition = compile_condition(source)
            except ConditionError as error:
                context["error"] = str(error)
            else:
                current = request_facts(request)
                facts = {
                    "ip": current.ip,
                    "user_agent": current.user_agent,
                    "time": current.time,
                    "mfa": current.mfa,
                }
                context["results"].append(
                    ("Your current request", _evaluate(condition, facts, request))
                )
                if test_form.has_values():
                    typed = test_form.cleaned_data
                    facts = {
                        "ip": typed["test_ip"] or current.ip,
                        "user_agent": typed["test_user_agent"] or current.user_agent,
                        "time": typed["test_time"] or current.time,
                        "mfa": typed["test_mfa"],
                    }
                    context["results"].append(
                        ("The values typed in", _evaluate(condition, facts, request))
                    )
    if request.htmx:
        return render(request, f"{template}#result", context)
    return render(request, template, context)
