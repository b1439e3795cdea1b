"""Shrink to used (#16): from the unused-access report, a user's or application's direct
custom policies replaced by one holding only what it used in the report's window.

`GET …/unused-access/users/<membership id>/shrink/?days=N` (or `applications/<id>/`)
shows the narrowed policy proposed (policies.selectors.shrink, which states the rule)
under the report's guard; its form (`…/shrink/save/`) has one button, Preview
(policies.preview: who loses what), and Confirm saves (policies.services.shrink). As with
every previewed change, a post without the preview field saves at once. Saving needs
what its services need: `iam:policies:attach` (the guard), `iam:policies:create` and
`iam:policies:update`, and a fresh sudo, as every policy write.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.sudo import sudo_required
from iamportal.forms import apply_errors
from organizations.models import Application, Membership
from policies import preview
from policies.authz import authorize, deny_response
from policies.evaluator import CompiledRule
from policies.forms.shrink import ShrinkForm
from policies.guards import requires
from policies.lockout import refuses_self_lockout
from policies.selectors.rules import compile_policy_rules
from policies.selectors.shrink import ShrinkPlan, shrink_plan
from policies.services.shrink import principal_shrink_to_used
from policies.views.attachments import principal_for, principal_label, principal_page_url
from policies.views.unused import DEFAULT_DAYS, days_asked

TEMPLATE = "policies/tools/shrink.html"
TARGET = "shrink-form"  # the card the form and its preview replace each other in
# Besides the guard's iam:policies:attach: what the services writing the change need,
# and reading usage (the report's own guard).
ALSO_NEEDED = ("iam:policies:create", "iam:policies:update", "iam:simulator:use")


def _subject(
    request: HttpRequest, membership_id: UUID | None, application_id: UUID | None
) -> Membership | Application:
    """The organization's user (by membership id) or application, else 404; owners hold
    everything by ownership, with no policy to narrow."""
    organization = request.organization  # type: ignore[attr-defined]
    if application_id is not None:
        return principal_for(  # type: ignore[return-value]
            organization=organization, kind="application", principal_id=application_id
        )
    subject = principal_for(organization=organization, kind="user", principal_id=membership_id)
    if isinstance(subject, Membership) and subject.is_owner:
        raise Http404("Owners hold every permission by ownership: no policy to narrow.")
    return subject  # type: ignore[return-value]


def _url(name: str, subject: Membership | Application) -> str:
    """`iamtools:shrink_<kind>` (the page) or `…_save` of the subject's kind."""
    kind = "user" if isinstance(subject, Membership) else "application"
    return reverse(f"iamtools:shrink_{kind}{name}", args=[subject.organization_id, subject.pk])


def _page(
    request: HttpRequest, plan: ShrinkPlan, form: ShrinkForm, *, status: int = 200
) -> HttpResponse:
    context: dict[str, Any] = {
        "plan": plan,
        "form": form,
        "label": principal_label(plan.subject),
        "save_url": _url("_save", plan.subject),
        "principal_url": principal_page_url(request.organization, plan.subject),  # type: ignore[attr-defined]
        "target": TARGET,
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, f"{TEMPLATE}#shrink", context)
    return render(request, TEMPLATE, context, status=status)


@requires("iam:simulator:use")
@require_GET
def shrink_view(
    request: HttpRequest,
    org_id: UUID,
    membership_id: UUID | None = None,
    application_id: UUID | None = None,
) -> HttpResponse:
    """The narrowed policy proposed for a user or application, with its form."""
    subject = _subject(request, membership_id, application_id)
    days = days_asked(request)
    plan = shrink_plan(subject=subject, days=days)
    name = f"{principal_label(subject)}: used in {days} days"
    return _page(request, plan, ShrinkForm(initial={"name": name, "days": days}))


@requires("iam:policies:attach")
@sudo_required
@refuses_self_lockout
@require_POST
def shrink_save(
    request: HttpRequest,
    org_id: UUID,
    membership_id: UUID | None = None,
    application_id: UUID | None = None,
) -> HttpResponse:
    """Save the replacement; with Preview (the page's only button), the access diff it
    would make first, and Confirm saves it with that diff."""
    for action in ALSO_NEEDED:
        if not (decision := authorize(request, action)).allowed:
            return deny_response(request, decision)
    subject = _subject(request, membership_id, application_id)
    form = ShrinkForm(request.POST)
    if not form.is_valid():
        days = form.cleaned_data.get("days") or DEFAULT_DAYS
        return _page(request, shrink_plan(subject=subject, days=days), form, status=400)
    plan = shrink_plan(subject=subject, days=form.cleaned_data["days"])
    if not plan.proposes:
        form.add_error(None, f"Nothing was used in the last {plan.days} days: no policy to make.")
        return _page(request, plan, form, status=400)
    name = form.cleaned_data["name"]

    def change(diff: dict[str, Any] | None = None) -> Any:
        return principal_shrink_to_used(
            plan=plan, name=name, actor=request.user, request=request, preview=diff
        )

    def preview_change() -> list[CompiledRule]:
        return compile_policy_rules([change().pk])

    asked = preview.asked(request)
    try:
        if asked is None:
            policy = change()
        else:
            before = compile_policy_rules([p.pk for p in plan.replaced])
            diff = preview.access_diff(request, before, preview_change)
            if asked == "preview" or not preview.confirms(request, diff):
                return preview.render_preview(
                    request,
                    diff,
                    title=f"replace the custom policies of {principal_label(subject)} with {name}",
                    target=TARGET,
                    cancel_url=f"{_url('', subject)}?days={plan.days}",
                    stale=asked == "confirm",
                )
            policy = change(diff.audit_data())
    except ValidationError as error:
        apply_errors(form, error)
        return _page(request, plan, form, status=400)
    messages.success(
        request,
        f"{policy.name} now holds what {principal_label(subject)} used, "
        "in place of its custom policies.",
    )
    url = reverse("policies:policy_detail", args=[org_id, policy.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)  # type: ignore[attr-defined]
