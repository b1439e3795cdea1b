"""Refusing a change that would lock its author out, unless they confirm it.

Views that can take rights away from the person using them (rules, guardrails,
attachments, group membership) are decorated below their guard::

    @requires("iam:policies:update")
    @sudo_required
    @refuses_self_lockout
    @require_POST
    def rule_add(request, org_id, policy_id): ...

The view runs in a transaction; afterwards the author's rules are compiled afresh from
that transaction and the view's own action is decided for the author's current request
(IP, user agent, time, MFA). If the author would no longer be allowed it, and so could
not undo the change, the transaction is rolled back (no change, no event) and a page
explains why and offers to submit the same form again with `confirm_lockout=1`. Owners
are never locked out and never asked.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.messages.storage import default_storage
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from audit import events
from audit.services import record
from iamportal.api_errors import APIError
from policies import authz
from policies.evaluator import Decision, decide
from policies.interruptions import back_url, interruption
from policies.selectors.rules import compile_rules_for

CONFIRM_FIELD = "confirm_lockout"
TEMPLATE = "policies/lockout_confirm.html"

View = Callable[..., HttpResponse]


class RollBack(Exception):
    """Raised by an inspection of `run_and_inspect` to undo the change it looked at;
    carries what it found."""

    def __init__(self, found: Any = None) -> None:
        super().__init__()
        self.found = found


class _WouldLockOut(RollBack):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision)
        self.decision = decision


T = TypeVar("T")


def run_and_inspect(request: HttpRequest, run: Callable[[], T], inspect: Callable[[T], Any]) -> T:
    """`run()` in a transaction, then `inspect(result)` inside it, seeing the change as
    saved. The one way to look at a change before keeping it (the self-lockout check,
    change previews; the delegation ceiling decides inside the services' own
    transaction): an inspection raising `RollBack` undoes the change, no row and no
    event left, and what was compiled or said meanwhile is forgotten; it propagates."""
    try:
        with transaction.atomic():
            result = run()
            inspect(result)
    except RollBack:
        _forget_rolled_back_work(request)
        raise
    return result


def rolled_back(request: HttpRequest, run: Callable[[], T], inspect: Callable[[T], Any]) -> Any:
    """What `inspect(run())` finds, the change always undone (`run_and_inspect`)."""

    def undo(result: T) -> None:
        raise RollBack(inspect(result))

    try:
        run_and_inspect(request, run, undo)
    except RollBack as undone:
        return undone.found
    raise AssertionError("unreachable: the inspection always rolls back")


def decision_after_change(request: HttpRequest) -> Decision:
    """The view's action decided for its author (the signed-in member, or an API key's
    bearer) as the database now stands, inside the caller's transaction. The guarded
    changes touch rules, attachments and groups, never the author's membership itself,
    so only the rules are read again."""
    subject = authz.subject_of(request)
    assert subject is not None, "decision_after_change() needs a guarded request"
    return decide(
        principal=authz.principal_of(subject),
        rules=compile_rules_for(subject),
        action=request.iam_action,  # type: ignore[attr-defined]
        project_id=None,
        request=authz.request_facts(request),
    )


def _run_refusing_lockout(request: HttpRequest, confirmed: bool, run: Callable[[], Any]) -> Any:
    """`run()` in a transaction, rolled back by raising `_WouldLockOut` when its author
    would lose the view's action and did not confirm; a confirmed lockout is audited."""

    def check(_result: Any) -> None:
        decision = decision_after_change(request)
        if decision.allowed:
            return
        if not confirmed:
            raise _WouldLockOut(decision)
        # Knowingly giving up one's own access is part of the trail.
        record(
            action=events.SELF_LOCKOUT_CONFIRMED,
            organization=request.organization,  # type: ignore[attr-defined]
            actor=request.user,
            target_label=decision.action,
            data={"action": decision.action, "explanation": decision.explanation},
            request=request,
        )

    return run_and_inspect(request, run, check)


def refuses_self_lockout(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = getattr(request, "membership", None)
        if request.method != "POST" or membership is None or membership.is_owner:
            return view(request, *args, **kwargs)
        confirmed = request.POST.get(CONFIRM_FIELD) == "1"
        try:
            return _run_refusing_lockout(request, confirmed, lambda: view(request, *args, **kwargs))
        except _WouldLockOut as refused:
            return _confirmation(request, refused.decision)

    return wrapped


def api_refuses_self_lockout(view: Callable[..., Any]) -> Callable[..., Any]:
    """The API's form, below `@api_requires`: a change that would take the operation's
    own action away from the key's bearer is refused 409 `would_lock_out` (nothing
    saved) unless the call is repeated with `?confirm_lockout=true`."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        subject = authz.subject_of(request)
        if subject is None or authz.principal_of(subject).is_owner:
            return view(request, *args, **kwargs)
        confirmed = request.GET.get(CONFIRM_FIELD, "").lower() in ("1", "true")
        try:
            return _run_refusing_lockout(request, confirmed, lambda: view(request, *args, **kwargs))
        except _WouldLockOut as refused:
            decision = refused.decision
            raise APIError(
                409,
                "would_lock_out",
                f"This change would take {decision.action} away from this key's bearer, "
                "who could then not undo it. Nothing was saved; repeat the call with "
                f"?{CONFIRM_FIELD}=true to make it anyway.",
                {"permission": decision.action, "explanation": decision.explanation},
            ) from None

    return wrapped


def _forget_rolled_back_work(request: HttpRequest) -> None:
    # Rules compiled inside the rolled-back transaction may sit in the process cache
    # under the organization's current version. The view's success message never came
    # true: a fresh storage holds only the messages of earlier requests.
    authz.forget_organization(request.organization.pk)  # type: ignore[attr-defined]
    request.__dict__.pop("_iam_decisions", None)
    request._messages = default_storage(request)  # type: ignore[attr-defined]


def _confirmation(request: HttpRequest, decision: Decision) -> HttpResponse:
    context = {
        "decision": decision,
        "action": request.iam_action,  # type: ignore[attr-defined]
        "post_url": request.get_full_path(),
        "fields": [
            (name, value)
            for name, values in request.POST.lists()
            if name not in ("csrfmiddlewaretoken", CONFIRM_FIELD)
            for value in values
        ],
        "confirm_field": CONFIRM_FIELD,
        "back_url": back_url(request),
        "facts": authz.request_facts(request),
    }
    return interruption(request, TEMPLATE, "confirmation", context, status=409)
