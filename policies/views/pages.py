"""The policy page and its fragments (rules, attachments), which every editor view renders;
HTMX gets the partials."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from iamportal.widgets import pick_searches
from organizations.models import Organization
from organizations.selectors import projects as project_selectors
from policies.authz import authorize, deny_response
from policies.catalogue import GUARDRAIL_EDIT
from policies.forms.attachments import AttachForm
from policies.forms.rules import ConditionTestForm, RuleForm
from policies.models import Policy, Rule
from policies.selectors import attachments as attachment_selectors
from policies.selectors import policies as policy_selectors


def edit_action(policy: Policy | None) -> str:
    """The permission that changes `policy`'s rules. Guardrails bind every non-owner, so
    their own permission is one no wildcard or managed policy grants."""
    if policy is None or policy.kind == Policy.Kind.GUARDRAIL:
        return GUARDRAIL_EDIT
    return "iam:policies:update"


def refuse_read_only_page(request: HttpRequest, policy: Policy) -> HttpResponse | None:
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


def page_template(policy: Policy | None) -> str:
    if policy is None or policy.kind == Policy.Kind.GUARDRAIL:
        return "policies/guardrails.html"
    return "policies/policy_detail.html"


def page_url(organization: Organization, policy: Policy | None) -> str:
    """The page showing `policy`'s rules: the guardrails page for the guardrail (or None)."""
    if policy is None or policy.kind == Policy.Kind.GUARDRAIL:
        return reverse("policies:guardrails", args=[organization.pk])
    return reverse("policies:policy_detail", args=[organization.pk, policy.pk])


def new_rule_form(
    request: HttpRequest, policy: Policy | None, *, data: Any = None, rule: Rule | None = None
) -> RuleForm:
    form = RuleForm(
        data,
        organization=request.organization,
        projects=project_selectors.projects_of(request.organization),
        is_guardrail=policy is None or policy.kind == Policy.Kind.GUARDRAIL,
        rule=rule,
    )
    return pick_searches(form, request.GET)  # the projects picker's search without scripts


def new_test_form(rule_form: RuleForm) -> ConditionTestForm:
    """The tester's fields, rendered inside `rule_form` and sharing its id prefix."""
    return ConditionTestForm(auto_id=f"{rule_form.form_id}-%s")


def rules_context(
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
    add_form = add_form or new_rule_form(request, policy)
    return {
        "policy": policy,
        "page_url": page_url(organization, policy),
        "rules": policy_selectors.ordered_rules(policy),
        "add_url": add_url,
        "add_form": add_form,
        "add_test_form": new_test_form(add_form),
        "editing": editing,
        "edit_form": edit_form,
        "edit_test_form": new_test_form(edit_form) if edit_form else None,
        "edit_action": edit_action(policy),
    }


def page_context(request: HttpRequest, policy: Policy | None, **rules: Any) -> dict[str, Any]:
    context = rules_context(request, policy, **rules)
    if policy is not None and policy.kind != Policy.Kind.GUARDRAIL:
        context.update(attachments_context(request, policy))
    return context


def attachments_context(
    request: HttpRequest, policy: Policy, attach_form: AttachForm | None = None
) -> dict[str, Any]:
    organization = request.organization
    if attach_form is None:  # a plain GET of the page may carry a picker's search
        attach_form = pick_searches(new_attach_form(policy, organization), request.GET)
    return {
        "policy": policy,
        "attachments": attachment_selectors.attachments_of(policy, organization),
        "attach_form": attach_form,
    }


# The attach form's fields and the kind of principal each picks.
_ATTACH_KINDS = {"membership": "user", "group": "group", "application": "application"}


def new_attach_form(policy: Policy, organization: Organization, data: Any = None) -> AttachForm:
    """The attach pickers; each searches its kind (organizations.views.pickers)."""
    return AttachForm(
        data,
        memberships=attachment_selectors.attachable_members(policy, organization),
        groups=attachment_selectors.attachable_groups(policy, organization),
        applications=attachment_selectors.attachable_applications(policy, organization),
        search_urls={
            field: reverse(
                "organizations:pick_policy_principals", args=[organization.pk, policy.pk, kind]
            )
            for field, kind in _ATTACH_KINDS.items()
        },
    )


def render_rules(
    request: HttpRequest, policy: Policy | None, *, status: int = 200, **rules: Any
) -> HttpResponse:
    """The rules partial for HTMX, the whole page otherwise (400 when a form is refused)."""
    if request.htmx:
        context = rules_context(request, policy, **rules)
        return render(request, "policies/rules.html#rules", context)
    return render(
        request, page_template(policy), page_context(request, policy, **rules), status=status
    )


def after_rule_write(
    request: HttpRequest, policy: Policy, message: str, *, warning: str | None = None
) -> HttpResponse:
    messages.success(request, message)
    if warning:  # a saved rule that may not do what its author meant
        messages.warning(request, warning)
    if request.htmx:
        return render_rules(request, policy)
    return redirect(page_url(request.organization, policy))


def render_attachments(
    request: HttpRequest, policy: Policy, attach_form: AttachForm | None = None
) -> HttpResponse:
    context = attachments_context(request, policy, attach_form)
    return render(request, "policies/policy_detail.html#attachments", context)
