"""`POST /api/v1/authorize`: the platform's services ask the evaluator "may principal P do
action A (in project X) with this request?", up to 100 questions a call.

Each question is decided by `policies.evaluator.decide` with the principal's cached
compiled rules, exactly as the console decides its own pages. The answers are not
audited as denials of the caller: a service asking about its users is not being refused
anything. Principals and projects are those of the calling key's organization; a
question naming any other makes the whole call 404 (its `details` say which), so a
caller's mistake is never mistaken for a decision.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import uuid
from typing import Any, Literal

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import Router, Schema
from pydantic import AwareDatetime, Field, field_validator

from iamportal.api_errors import APIError, error_responses
from iamportal.api_schemas import StrictPlain
from policies.authz import decider_for, principals_to_decide, projects_to_decide
from policies.catalogue import AUTHORIZE_CHECK
from policies.evaluator import CompiledRule, Decision, Reason, RequestFacts
from policies.guards import api_requires

router = Router(tags=["Authorization"])

MAX_QUESTIONS = 100
# Longest textual IPv6 address (with an embedded IPv4 part) is 45 characters.
IP_MAX_LENGTH = 45
USER_AGENT_MAX_LENGTH = 512
ACTION_MAX_LENGTH = 128


@functools.lru_cache(maxsize=4096)
def _normalized_ip(value: str) -> str:
    """The address in its canonical form (a service asks about the same few addresses
    again and again, so parsing each once is worth a small cache)."""
    return str(ipaddress.ip_address(value))


class PrincipalIn(StrictPlain):
    type: Literal["user", "application"]
    id: uuid.UUID = Field(description="A user's account id, or an application's id.")


class ContextIn(StrictPlain):
    """What conditions see of the request being decided (`request.*` in CEL)."""

    ip: str = Field("", max_length=IP_MAX_LENGTH, description="The client's IP address.")
    user_agent: str = Field("", max_length=USER_AGENT_MAX_LENGTH)
    time: AwareDatetime | None = Field(
        None, description="With its UTC offset; the time of this call when absent."
    )
    mfa: bool = Field(False, description="Whether the principal signed in with a second factor.")

    @field_validator("ip")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if not value:
            return value
        try:
            return _normalized_ip(value)
        except ValueError:
            raise ValueError("not an IPv4 or IPv6 address") from None


class QuestionIn(StrictPlain):
    principal: PrincipalIn
    action: str = Field(max_length=ACTION_MAX_LENGTH, examples=["compute:instances:create"])
    project: uuid.UUID | None = Field(
        None, description="For a project-level action; none asks about every project."
    )
    context: ContextIn = Field(default_factory=ContextIn)


class AuthorizeIn(StrictPlain):
    questions: list[QuestionIn] = Field(min_length=1, max_length=MAX_QUESTIONS)


class MatchedRuleOut(Schema):
    policy_id: str
    policy_name: str
    rule_index: int = Field(description="1-based position of the rule in its policy.")
    effect: Literal["allow", "deny"]
    guardrail: bool
    label: str


class DecisionOut(Schema):
    allowed: bool
    reason: Reason
    explanation: str
    deciding_rule: MatchedRuleOut | None
    matched_rules: list[MatchedRuleOut]


class AuthorizeOut(Schema):
    decisions: list[DecisionOut] = Field(description="One per question, in the same order.")


def _rule_out(rule: CompiledRule) -> dict[str, Any]:
    """`MatchedRuleOut` as a plain dictionary."""
    return {
        "policy_id": rule.policy_id,
        "policy_name": rule.policy_name,
        "rule_index": rule.rule_index,
        "effect": rule.effect,
        "guardrail": rule.is_guardrail,
        "label": rule.label,
    }


def decision_out(
    decision: Decision, rules: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """`DecisionOut` as a plain dictionary; `rules` memoises rule dictionaries across the
    answers of one batch, so a rule many answers name is written once."""
    rules = {} if rules is None else rules

    def out(rule: CompiledRule) -> dict[str, Any]:
        found = rules.get(id(rule))
        if found is None:
            found = rules[id(rule)] = _rule_out(rule)
        return found

    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "explanation": decision.explanation,
        "deciding_rule": out(decision.deciding_rule) if decision.deciding_rule else None,
        "matched_rules": [out(rule) for rule in decision.matched_rules],
    }


def facts_of(context: ContextIn, now: datetime.datetime) -> RequestFacts:
    """The request facts a question describes; `now` when it names no time."""
    return RequestFacts(
        ip=context.ip, user_agent=context.user_agent, time=context.time or now, mfa=context.mfa
    )


@router.post(
    "/authorize",
    response={200: AuthorizeOut, **error_responses(401, 403, 404, 422)},
    operation_id="authorize",
)
@api_requires(AUTHORIZE_CHECK)
def authorize(request: HttpRequest, payload: AuthorizeIn) -> JsonResponse:
    """Decide up to 100 questions "may this principal do this action (in this project) with
    this request?", each with the rules that matched and an explanation in words.

    Principals and projects must be the calling key's organization's: any other makes
    the whole call 404, `details` naming the questions (`questions.<i>.principal`).
    """
    organization = request.organization  # type: ignore[attr-defined]
    questions = payload.questions
    subjects = principals_to_decide(
        organization, ((q.principal.type, q.principal.id) for q in questions)
    )
    projects = projects_to_decide(organization, (q.project for q in questions if q.project))
    unknown: dict[str, list[str]] = {}
    for index, question in enumerate(questions):
        if (question.principal.type, question.principal.id) not in subjects:
            unknown[f"questions.{index}.principal"] = ["No such principal in this organization."]
        if question.project is not None and question.project not in projects:
            unknown[f"questions.{index}.project"] = ["No such project in this organization."]
    if unknown:
        raise APIError(
            404, "not_found", "Some questions name unknown principals or projects.", unknown
        )
    now = timezone.now()
    deciders = {ref: decider_for(subject) for ref, subject in subjects.items()}
    rules: dict[int, dict[str, Any]] = {}
    decisions = []
    for question in questions:
        decide = deciders[(question.principal.type, question.principal.id)]
        decision = decide(question.action, question.project, facts_of(question.context, now))
        decisions.append(decision_out(decision, rules))
    # Built here rather than validated by django-ninja against `AuthorizeOut`, which would
    # cost more than deciding the questions; the schema tests hold it to the schema.
    return JsonResponse({"decisions": decisions})
