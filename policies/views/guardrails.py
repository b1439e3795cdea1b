"""The guardrails page and its rules."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.sudo import sudo_required
from policies.catalogue import GUARDRAIL_EDIT
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.selectors import policies as policy_selectors
from policies.views.pages import page_context
from policies.views.rules import save_rule


@requires("iam:policies:read")
@require_GET
def guardrails(request: HttpRequest, org_id: UUID) -> HttpResponse:
    policy = policy_selectors.guardrail_of(request.organization)
    return render(request, "policies/guardrails.html", page_context(request, policy))


@requires(GUARDRAIL_EDIT)
@sudo_required
@refuses_self_lockout
@require_POST
def guardrail_rule_add(request: HttpRequest, org_id: UUID) -> HttpResponse:
    return save_rule(request, policy_selectors.guardrail_of(request.organization))
