"""The IAM tools: the action catalogue, the policy simulator, effective permissions of a user
or an application, and the condition tester."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_POST

from iamportal.ratelimit import within_limit
from iamportal.widgets import escape_html as _e
from organizations.models import Application, Membership, Organization
from organizations.selectors.applications import application_for
from organizations.selectors.organizations import member_for
from policies import catalogue
from policies.authz import principal_of, request_facts
from policies.catalogue import RESOURCE_TYPE_OF, RESOURCE_TYPES
from policies.conditions.compiler import (
    CompiledCondition,
    ConditionContext,
    ConditionError,
    ConditionEvaluationError,
    compile_condition,
)
from policies.effective import EffectivePermission, effective_permissions, resource_decisions
from policies.evaluator import (
    CompiledRule,
    RequestFacts,
    ResourceFacts,
    decide,
    describe_scope,
)
from policies.forms.rules import ConditionForm, ConditionTestForm
from policies.forms.tools import (
    DATETIME_LOCAL,
    ResourceQuestionForm,
    SimulatorForm,
    action_choices,
)
from policies.guards import requires
from policies.selectors.policies import resource_matches
from policies.selectors.tools import project_names, resource_in, resource_names
from policies.selectors.tools import rules_of as _rules_of
from policies.usage import last_allowed, used_words


def _evaluate(
    condition: CompiledCondition,
    facts: dict[str, Any],
    request: HttpRequest,
    principal_tags: Mapping[str, str] | None = None,
    resource: ResourceFacts | None = None,
) -> dict[str, Any]:
    """The condition's value for one set of facts (the editor's own tags unless others are
    given), or the error that fails it closed."""
    principal = principal_of(request.membership)
    tags = principal.tags if principal_tags is None else principal_tags
    context = ConditionContext(
        **facts,
        principal_type=principal.type,
        principal_id=principal.id,
        principal_tags=tags,
        resource=resource,
    )
    seen = {"facts": facts, "principal_tags": sorted(tags.items()), "resource": resource}
    try:
        value = condition.evaluate(context)
    except ConditionEvaluationError as error:
        return {**seen, "error": str(error)}
    return {**seen, "value": value}


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
                    resource = None
                    if typed["test_resource_type"]:
                        # Not a registered resource: its project is no real project's id.
                        resource = ResourceFacts.of(
                            type=typed["test_resource_type"],
                            id=None,
                            project_id="(test)",
                            tags=typed["test_resource_tags"] or {},
                        )
                    result = _evaluate(
                        condition, facts, request, typed["test_principal_tags"], resource
                    )
                    context["results"].append(("The values typed in", result))
    if request.htmx:
        return render(request, f"{template}#result", context)
    return render(request, template, context)


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A compiled rule with its scope in words, for display."""

    rule: CompiledRule
    scope: str

    @property
    def actions(self) -> list[str]:
        return sorted(self.rule.actions)


def _rows(
    rules: Iterable[CompiledRule],
    projects: Mapping[str, str],
    names: Mapping[str, str] | None = None,
) -> list[RuleRow]:
    return [RuleRow(rule, describe_scope(rule.scope, projects, names)) for rule in rules]


# ------------------------------------------------------------------- resource picker


def _picking(request: HttpRequest) -> bool:
    """Is this the resource picker's search (rather than the page)?"""
    return request.GET.get("pick") == "resource"


def _resource_choices(request: HttpRequest) -> HttpResponse:
    """The picker's radio buttons: the resource chosen so far, then up to the rule
    editor's number of matches of the search (its selector), of the type of the action
    (or the resource type) chosen, when there is one."""
    organization = request.organization
    chosen = resource_in(organization, request.GET.get("resource", ""))
    type_key = RESOURCE_TYPE_OF.get(request.GET.get("action", "")) or request.GET.get(
        "resource_type", ""
    )
    q = request.GET.get("resource_q", "")[:200]
    matches, more = resource_matches(
        organization,
        q,
        types=[type_key] if type_key in RESOURCE_TYPES else [],
        exclude=[chosen.pk] if chosen else [],
    )
    context = {"chosen": chosen, "matches": matches, "more": more, "q": q}
    return render(request, "policies/tools/_resource_choices.html", context)


# ------------------------------------------------------------------------- catalogue


@cache
def _catalogue_listing() -> dict[str, Any]:
    """The catalogue arranged for display; it is immutable, so built once per process."""
    services = [
        (service, catalogue.actions_for_service(key)) for key, service in catalogue.SERVICES.items()
    ]
    permission_sets = [
        (
            permission_set,
            catalogue.permission_set_level(name),
            sorted(catalogue.permission_set_actions(name)),
        )
        for name, permission_set in catalogue.PERMISSION_SETS.items()
    ]
    return {"services": services, "permission_sets": permission_sets}


@requires("iam:policies:list")
@require_GET
def catalogue_view(request: HttpRequest, org_id: UUID) -> HttpResponse:
    return render(request, "policies/tools/catalogue.html", _catalogue_listing())


# ------------------------------------------------------------------------- simulator


@requires("iam:simulator:use")
@require_GET
def simulator(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Ask the evaluator about any member, action, project and request context.

    The form counts as submitted once it carries an action; before that, query
    parameters (`?principal=` from a member's page) only pre-fill it. The question may
    be about a resource, registered (picked by searching, `?pick=resource`) or not.
    """
    if _picking(request):
        return _resource_choices(request)
    organization = request.organization
    context: dict[str, Any] = {}
    if "action" in request.GET:
        form = SimulatorForm(request.GET, organization=organization, query=request.GET)
        if form.is_valid():
            context = _simulate(form, organization)
    else:
        initial = {"time": timezone.now().strftime(DATETIME_LOCAL), **request.GET.dict()}
        form = SimulatorForm(initial=initial, organization=organization, query=request.GET)
    context["form"] = form
    context["fields_html"] = simulator_fields_html(form)
    # HTMX does not swap 4xx responses by default, so its errors come back with 200.
    status = 400 if form.is_bound and form.errors and not request.htmx else 200
    template = "policies/tools/simulator.html"
    if request.htmx:
        template += "#result"
    return render(request, template, context, status=status)


def simulator_fields_html(form: SimulatorForm) -> SafeString:
    """The simulator form's fields but the resource picker's, each as its field group;
    the action's select with its options prebuilt (through the widget's templates its 65
    options cost more than the rest of the form). In Python: a template loop over the
    fields cost ~60 µs a field."""
    parts = []
    for field in form.plain_fields:
        if field.name == "action":
            invalid = ' aria-invalid="true"' if field.errors else ""
            html = (
                f'\n    {field.label_tag()}{field.errors}<select name="{_e(field.html_name)}"'
                f' required id="{_e(field.auto_id)}"{invalid}>\n'
                f"{action_options_html(field.value())}\n</select>\n    "
            )
        else:
            html = str(field.as_field_group())
        parts.append(f"\n    {html}\n    ")
    return mark_safe("".join(parts))  # noqa: S308 - built of escaped values and safe HTML


def action_options_html(selected: object) -> SafeString:
    """The action select's options, `selected` chosen: built once per action, the catalogue
    being immutable (Django's widget templates render each of its options one by one)."""
    if selected in (None, ""):
        return _action_options("")  # the empty choice, as Django's select marks it
    return _action_options(selected if selected in catalogue.ACTIONS else None)


@lru_cache(maxsize=len(catalogue.ACTIONS) + 1)
def _action_options(selected: str | None) -> SafeString:
    def option(value: str, label: str) -> SafeString:
        chosen = mark_safe(" selected") if value == selected else ""
        return format_html('<option value="{}"{}>{}</option>', value, chosen, label)

    parts = []
    for value, label in action_choices():
        if isinstance(label, list | tuple):
            inner = format_html_join("\n", "{}", ((option(v, text),) for v, text in label))
            parts.append(format_html('<optgroup label="{}">\n{}\n</optgroup>', value, inner))
        else:
            parts.append(option(value, label))
    return format_html_join("\n", "{}", ((part,) for part in parts))


def _simulate(form: SimulatorForm, organization: Organization) -> dict[str, Any]:
    subject: Membership | Application = form.cleaned_data["principal"]
    project = form.cleaned_data["project"]
    resource = form.resource_facts()
    if form.chosen is not None:
        project = form.chosen.project
    facts = form.request_facts()
    principal = principal_of(subject)
    rules = _rules_of(subject, principal, organization)
    decision = decide(
        principal=principal,
        rules=rules,
        action=form.cleaned_data["action"],
        project_id=str(project.pk) if project else None,
        request=facts,
        resource=resource,
    )
    projects = project_names(organization, decision.matched_rules)
    names = resource_names(organization, decision.matched_rules)
    deciding = decision.deciding_rule
    return {
        "decision": decision,
        "subject": subject,
        "principal": principal,
        "project": project,
        "resource": resource,
        "registered": form.chosen,
        "facts": facts,
        "deciding": _rows([deciding], projects, names)[0] if deciding else None,
        "matched": _rows(decision.matched_rules, projects, names),
        "missing": decision.reason == "implicit_deny",
    }


# -------------------------------------------------------------- effective permissions


@requires("iam:users:read")
@require_GET
def effective_permissions_view(
    request: HttpRequest, org_id: UUID, membership_id: UUID
) -> HttpResponse:
    """Every action the member holds, where, and through which rule; plus the denies."""
    subject = member_for(organization=request.organization, membership_id=membership_id)
    return _effective_permissions(request, subject)


@requires("iam:applications:read")
@require_GET
def application_permissions_view(
    request: HttpRequest, org_id: UUID, application_id: UUID
) -> HttpResponse:
    """The same for an application: what its API keys may do."""
    subject = application_for(organization=request.organization, application_id=application_id)
    return _effective_permissions(request, subject)


def _effective_permissions(request: HttpRequest, subject: Membership | Application) -> HttpResponse:
    """The page; `?resource=` (or `resource_type`, `project` and tag rows) asks instead
    for the decisions on that resource, one per action of its type."""
    if _picking(request):
        return _resource_choices(request)
    organization = request.organization
    asked = "resource" in request.GET or "resource_type" in request.GET
    kind = "applications" if isinstance(subject, Application) else "users"
    form = ResourceQuestionForm(
        request.GET if asked else None,
        organization=organization,
        project_search_url=reverse(
            f"organizations:pick_{kind}_permission_projects", args=[organization.pk]
        ),
        query=request.GET,
    )
    principal = principal_of(subject)
    rules = _rules_of(subject, principal, organization)
    projects = project_names(organization, rules)
    names = resource_names(organization, rules)
    context: dict[str, Any] = {"subject": subject, "principal": principal, "form": form}
    resource = form.resource_facts() if form.is_bound and form.is_valid() else None
    if resource is not None:
        # Only the resource's facts are known: conditions on the request see none.
        facts = RequestFacts(ip="", user_agent="", time=timezone.now(), mfa=False)
        context.update(
            resource=resource,
            registered=form.chosen,
            resource_type=RESOURCE_TYPES[resource.type],
            resource_project=form.chosen.project if form.chosen else form.cleaned_data["project"],
            decisions=resource_decisions(principal, rules, resource, facts),
        )
    else:
        permissions = effective_permissions(
            principal, rules, project_names=projects, resource_names=names
        )
        # When each action was last allowed (#16): one query for the principal, not per row.
        used = last_allowed(organization.pk, principal.type, principal.id) if permissions else {}
        context.update(_grants_listing(request, permissions, used))
    denies = _rows((rule for rule in rules if rule.effect == "deny"), projects, names)
    context["denies"] = denies
    context["denies_html"] = deny_rows_html(denies)
    status = 400 if form.is_bound and form.errors else 200
    template = "policies/tools/effective_permissions.html"
    if request.htmx and request.headers.get("HX-Target") == "grants" and resource is None:
        template += "#grants"
    return render(request, template, context, status=status)


# A principal holding many policies holds hundreds of grants: past one page, the page
# summarises each action held and lists the grants a page (or one action) at a time.
GRANTS_PER_PAGE = 100


def _grants_listing(
    request: HttpRequest,
    permissions: list[EffectivePermission],
    used: Mapping[str, dt.datetime] | None = None,
) -> dict[str, Any]:
    """The grants shown (one action's with `?action=`, a page of them), by service, with
    the summary of the actions held when they do not fit one page; `used`: when each
    action was last allowed."""
    action = request.GET.get("action", "")
    shown = [p for p in permissions if p.action == action] if action in catalogue.ACTIONS else []
    if not shown:
        action = ""
        shown = permissions
    page = Paginator(shown, GRANTS_PER_PAGE).get_page(request.GET.get("page"))
    services = _by_service(page.object_list)
    context: dict[str, Any] = {
        "page": page,
        "action": action,
        "grant_count": len(permissions),
        "services": services,
        # The rows' HTML is built in Python: template rows cost ~75 µs each, most of the page.
        "sections": [(service, grant_rows_html(rows, used)) for service, rows in services],
    }
    if len(permissions) > GRANTS_PER_PAGE:
        held = [(service, held_actions(rows)) for service, rows in _by_service(permissions)]
        context["held"] = [(service, held_rows_html(actions, used)) for service, actions in held]
        context["held_count"] = sum(len(actions) for _, actions in held)
    return context


def _by_service(
    permissions: Iterable[EffectivePermission],
) -> list[tuple[catalogue.Service, list[EffectivePermission]]]:
    by_service: dict[str, list[EffectivePermission]] = {key: [] for key in catalogue.SERVICES}
    for permission in permissions:
        by_service[catalogue.ACTIONS[permission.action].service].append(permission)
    return [(catalogue.SERVICES[key], rows) for key, rows in by_service.items() if rows]


@dataclass(frozen=True, slots=True)
class HeldAction:
    """One action held, summed up over its grants."""

    action: str
    grants: int
    always: bool  # some grant holds whatever the request (no condition)
    limited: bool  # some grant may be taken back by a deny
    where: str


# Distinct scopes named in a summary row before "and N more".
WHERE_SHOWN = 3


def held_actions(permissions: Iterable[EffectivePermission]) -> list[HeldAction]:
    """One entry per action of `permissions` (sorted by action), in the catalogue's words."""
    grouped: dict[str, list[EffectivePermission]] = {}
    for permission in permissions:
        grouped.setdefault(permission.action, []).append(permission)
    held = []
    for action, grants in grouped.items():
        scopes = sorted({g.scope for g in grants}, key=lambda s: (_WIDE.get(s, len(_WIDE)), s))
        where = ", ".join(capfirst(scope) for scope in scopes[:WHERE_SHOWN])
        if len(scopes) > WHERE_SHOWN:
            where += f" and {len(scopes) - WHERE_SHOWN} more"
        held.append(
            HeldAction(
                action=action,
                grants=len(grants),
                always=any(not g.conditional for g in grants),
                limited=any(g.limited_by for g in grants),
                where=where,
            )
        )
    return held


_WIDE = {"organization": 0, "all projects": 1}


def held_rows_html(
    held: Iterable[HeldAction], used: Mapping[str, dt.datetime] | None = None
) -> SafeString:
    """The summary's rows: each action links to its grants (the grants part alone with
    HTMX, the page at its grants without); last, when it was last used (`used`)."""
    words = _used_words(used)
    return _joined(_held_row(h, words(h.action)) for h in held)


def _used_words(used: Mapping[str, dt.datetime] | None) -> Callable[[str], str]:
    """action -> its last use in words ("used today", "used 12 days ago", "never used"),
    each distinct action worded once."""
    now = timezone.now()
    worded: dict[str, str] = {}

    def words(action: str) -> str:
        if action not in worded:
            worded[action] = used_words((used or {}).get(action), now)
        return worded[action]

    return words


# The rows below are f-strings of escaped values (escape_html), not format_html: with its
# lazy-string wrappers, format_html cost ~15 µs a row, most of the page's rendering.
def _joined(rows: Iterable[str]) -> SafeString:
    return mark_safe("\n".join(rows))  # noqa: S308 - each row escapes its values


def _held_row(held: HeldAction, used: str = "") -> str:
    query = _e(urlencode({"action": held.action}))
    condition = "Always" if held.always else _CONDITIONAL_ONLY
    return (
        f'<tr><td><a href="?{query}#grants" hx-get="?{query}" hx-target="#grants"'
        f' hx-swap="outerHTML"><code class="action">{_e(held.action)}</code></a></td>'
        f"<td>{_e(held.where)}</td><td>{held.grants}</td>"
        f"<td>{condition}{_MAY_BE_DENIED if held.limited else ''}</td>"
        f"<td>{capfirst(used)}</td></tr>"
    )


_CONDITIONAL_ONLY = '<span class="badge">Conditional</span> only'
_MAY_BE_DENIED = '<br><span class="muted">May be denied</span>'


def grant_rows_html(
    permissions: Iterable[EffectivePermission], used: Mapping[str, dt.datetime] | None = None
) -> SafeString:
    """The grants table's rows (every value escaped), each with its action's last use."""
    words = _used_words(used)
    return _joined(_grant_row(p, words(p.action)) for p in permissions)


def _grant_row(permission: EffectivePermission, used: str = "") -> str:
    condition = (
        f'<span class="badge">Conditional</span> <code>{_e(permission.condition)}</code>'
        if permission.conditional
        else "—"
    )
    limited = (
        f'<br><span class="muted">May be denied by {_e(", ".join(permission.limited_by))}</span>'
        if permission.limited_by
        else ""
    )
    return (
        f"<tr><td><code>{_e(permission.action)}</code></td>"
        f"<td>{_e(capfirst(permission.scope))}</td><td>{_e(capfirst(permission.via))}</td>"
        f"<td>{condition}{limited}</td><td>{capfirst(used)}</td></tr>"
    )


def deny_rows_html(rows: Iterable[RuleRow]) -> SafeString:
    """The denies table's rows, each rule's actions folded in a <details>."""
    return _joined(_deny_row(row) for row in rows)


_GUARDRAIL_BADGE = ' <span class="badge">Guardrail</span>'


def _deny_row(row: RuleRow) -> str:
    rule = row.rule
    actions = row.actions
    condition = f"<code>{_e(rule.condition_source)}</code>" if rule.condition_source else "Always"
    listed = "".join(f"<li><code>{_e(name)}</code></li>" for name in actions)
    return (
        f"<tr><td>{_e(capfirst(rule.label))}{_GUARDRAIL_BADGE if rule.is_guardrail else ''}</td>"
        f"<td>{_e(capfirst(row.scope))}</td><td>{condition}</td>"
        f"<td><details><summary>{len(actions)} action{'' if len(actions) == 1 else 's'}"
        f"</summary><ul>{listed}</ul></details></td></tr>"
    )
