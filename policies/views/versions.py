"""Policy versions: the list (the policy page's card, or its own page), one version with
what it changed, and restoring it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.sudo import sudo_required
from iamportal.request import paginate
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.models import Policy
from policies.selectors import policies as policy_selectors
from policies.selectors import versions as version_selectors
from policies.services import rules as rule_services
from policies.views.pages import edit_action, page_url, refuse_read_only_page

# The card shows this many, newest first; older ones are paged.
VERSIONS_PER_PAGE = 10


def versions_context(request: HttpRequest, policy: Policy) -> dict[str, Any]:
    """The versions card's context: one page of the policy's versions."""
    versions = version_selectors.versions_of(policy)
    return {"policy": policy, "versions_page": paginate(request, versions, VERSIONS_PER_PAGE)}


def _policy(request: HttpRequest, policy_id: UUID) -> Policy:
    return policy_selectors.policy_for(organization=request.organization, policy_id=policy_id)


@requires("iam:policies:read")
@require_GET
def version_list(request: HttpRequest, org_id: UUID, policy_id: UUID) -> HttpResponse:
    """The versions card (HTMX, loaded by the policy page), or a page of its own."""
    policy = _policy(request, policy_id)
    context = {
        **versions_context(request, policy),
        "page_url": page_url(request.organization, policy),
    }
    if request.htmx:
        return render(request, "policies/versions/_versions.html", context)
    return render(request, "policies/versions/version_list.html", context)


@requires("iam:policies:read")
@require_GET
def version_detail(
    request: HttpRequest, org_id: UUID, policy_id: UUID, number: int
) -> HttpResponse:
    """One version: its rules, and what it changed against the version before it."""
    policy = _policy(request, policy_id)
    version = version_selectors.version_for(policy=policy, number=number)
    previous = version_selectors.previous_of(version)
    context = {
        "policy": policy,
        "version": version,
        "diff": version_selectors.version_diff(version, previous),
        "page_url": page_url(request.organization, policy),
        "is_current": version.number == policy.version,
        "edit_action": edit_action(policy),
    }
    return render(request, "policies/versions/version_detail.html", context)


@requires("iam:policies:update")
@sudo_required
@refuses_self_lockout
@require_http_methods(["GET", "POST"])
def version_restore(
    request: HttpRequest, org_id: UUID, policy_id: UUID, number: int
) -> HttpResponse:
    """Confirm, then replace the policy's rules with the version's, as a new version:
    within the author's rights and refusing a self-lockout, like any rule change."""
    policy = _policy(request, policy_id)
    if refused := refuse_read_only_page(request, policy):
        return refused
    version = version_selectors.version_for(policy=policy, number=number)
    if request.method == "POST":
        restored = rule_services.policy_restore(
            policy=policy, version=version, actor=request.user, request=request
        )
        messages.success(
            request, f"Version {number} restored as version {restored.version.number}."
        )
        for note in restored.dropped:
            messages.warning(request, note)
        return redirect(page_url(request.organization, policy))
    context = {
        "policy": policy,
        "version": version,
        "page_url": page_url(request.organization, policy),
        "attachment_count": policy.attachments.count(),
    }
    return render(request, "policies/versions/version_restore.html", context)
