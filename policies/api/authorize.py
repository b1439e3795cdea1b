"""`POST /api/v1/authorize`: the platform's services ask the evaluator "may principal P do
action A (in project X, or on resource R) with this request?", up to 100 questions a call.
A resource is a registered one (by id) or one to come (type, project and tags).

Each question is decided by `policies.evaluator.decide` with the principal's cached
compiled rules, exactly as the console decides its own pages. The answers are not
audited as denials of the caller: a service asking about its users is not being refused
anything. Principals, projects and resources are those of the calling key's organization; a
question naming any other makes the whole call 404 (its `details` say which), so a
caller's mistake is never mistaken for a decision.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import uuid
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import Router, Schema
from pydantic import AfterValidator, AwareDatetime, Field, field_validator, model_validator

from iamportal.api_errors import APIError, error_responses
from iamportal.api_schemas import StrictPlain
from organizations.api.resources import TYPES_TEXT, ResourceTypeKey, Tags
from organizations.tags import check_tags
from policies.authz import (
    decider_for,
    principals_to_decide,
    projects_to_decide,
    resources_to_decide,
)
from policies.catalogue import AUTHORIZE_CHECK
from policies.evaluator import CompiledRule, Decision, Reason, RequestFacts, ResourceFacts
from policies.guards import api_requires
from policies.selectors.tools import wrong_action_for
from policies.usage import note_decision

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


def _checked_tags(tags: dict[str, str]) -> dict[str, str]:
    try:
        return check_tags(tags)
    except ValidationError as error:
        raise ValueError(" ".join(error.message_dict["tags"])) from None


class ResourceIn(StrictPlain):
    """The resource a question is about: a registered one by `id` (its project and tags are
    the registry's), or one not registered yet by `project` and `tags` (may this principal
    create one like it?)."""

    type: ResourceTypeKey = Field(description=f"One of {TYPES_TEXT}.")
    id: uuid.UUID | None = Field(None, description="A registered resource of this type.")
    project: uuid.UUID | None = Field(None, description="Without `id`: the resource's project.")
    tags: Annotated[Tags, AfterValidator(_checked_tags)] | None = Field(
        None, description="Without `id`: the resource's tags (`resource.tags` in conditions)."
    )

    @model_validator(mode="after")
    def _registered_or_described(self) -> ResourceIn:
        if self.id is not None and (self.project is not None or self.tags is not None):
            raise ValueError(
                "give a registered resource's id alone: its project and tags are known"
            )
        if self.id is None and self.project is None:
            raise ValueError("give a registered resource's id, or the project of one to come")
        return self


class QuestionIn(StrictPlain):
    principal: PrincipalIn
    action: str = Field(max_length=ACTION_MAX_LENGTH, examples=["compute:instances:create"])
    project: uuid.UUID | None = Field(
        None, description="For a project-level action; none asks about every project."
    )
    resource: ResourceIn | None = Field(
        None,
        description="For one of the type's actions on one resource: rules scoped to it and "
        "conditions on `resource.*` take part. Its project is the question's.",
    )
    context: ContextIn = Field(default_factory=ContextIn)

    @model_validator(mode="after")
    def _fits_the_resource(self) -> QuestionIn:
        if self.resource is None:
            return self
        if self.project is not None:
            raise ValueError("with a resource, the project is the resource's: leave out `project`")
        if message := wrong_action_for(self.action, self.resource.type):
            raise ValueError(message)
        return self


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


def _project_of(question: QuestionIn) -> uuid.UUID | None:
    """The project a question names for itself (a registered resource's is the registry's)."""
    return question.resource.project if question.resource is not None else question.project


def _resource_facts(
    described: ResourceIn | None, registered: dict[uuid.UUID, ResourceFacts]
) -> ResourceFacts | None:
    if described is None:
        return None
    if described.id is not None:
        return registered[described.id]
    return ResourceFacts.of(
        type=described.type, id=None, project_id=described.project, tags=described.tags
    )


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

    A question about one resource gives `resource`: a registered one by `type` and `id`,
    or one not registered yet by `type`, `project` and `tags`; the action must be one of
    the type's. Rules scoped to that resource and conditions on `resource.*` then take part.

    Principals, projects and resources must be the calling key's organization's: any other
    makes the whole call 404, `details` naming the questions (`questions.<i>.principal`).
    """
    organization = request.organization  # type: ignore[attr-defined]
    questions = payload.questions
    subjects = principals_to_decide(
        organization, ((q.principal.type, q.principal.id) for q in questions)
    )
    resources = resources_to_decide(
        organization, (q.resource.id for q in questions if q.resource and q.resource.id)
    )
    # A question about every project names none: nothing to look up for it.
    projects = projects_to_decide(
        organization, {project for q in questions if (project := _project_of(q)) is not None}
    )
    unknown: dict[str, list[str]] = {}
    for index, question in enumerate(questions):
        if (question.principal.type, question.principal.id) not in subjects:
            unknown[f"questions.{index}.principal"] = ["No such principal in this organization."]
        described = question.resource
        if described is not None and described.id is not None:
            facts = resources.get(described.id)
            if facts is None or facts.type != described.type:
                unknown[f"questions.{index}.resource"] = [
                    f"No such {described.type} resource in this organization."
                ]
        elif (project := _project_of(question)) is not None and project not in projects:
            where = "resource.project" if described is not None else "project"
            unknown[f"questions.{index}.{where}"] = ["No such project in this organization."]
    if unknown:
        raise APIError(
            404,
            "not_found",
            "Some questions name unknown principals, projects or resources.",
            unknown,
        )
    now = timezone.now()
    deciders = {ref: decider_for(subject) for ref, subject in subjects.items()}
    rules: dict[int, dict[str, Any]] = {}
    decisions = []
    for question in questions:
        decide = deciders[(question.principal.type, question.principal.id)]
        facts = _resource_facts(question.resource, resources)
        project = facts.project_id if facts is not None else question.project
        decision = decide(question.action, project, facts_of(question.context, now), facts)
        note_decision(subjects[(question.principal.type, question.principal.id)], decision)
        decisions.append(decision_out(decision, rules))
    # Built here rather than validated by django-ninja against `AuthorizeOut`, which would
    # cost more than deciding the questions; the schema tests hold it to the schema.
    return JsonResponse({"decisions": decisions})
