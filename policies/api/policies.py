"""API operations on policies: list (custom and managed), create, read (with rules and
attachments), update, duplicate, delete.

Concurrency: every policy answer carries an `ETag` derived from the policy's content
(name, description, labels and rules). A write sent with `If-Match` is compared, under the
policy's row lock and in the same transaction as the service's write, with the policy as
it stands: a stale tag answers 409 and nothing is saved. No model field is needed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Literal, TypeVar

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Query, Router, Schema, Status

from iamportal.api_errors import APIError, error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict
from organizations.api.auth import acting_user
from policies.guards import api_requires
from policies.lockout import api_refuses_self_lockout
from policies.models import Policy, PolicyAttachment, Rule
from policies.selectors import attachments as attachment_selectors
from policies.selectors import policies as policy_selectors
from policies.services import policies as policy_services
from policies.services.rules import locked_policy, rule_data

router = Router(tags=["Policies"])

T = TypeVar("T")


# ----------------------------------------------------------------- shared helpers


def etag_of(policy: Policy) -> str:
    """A strong ETag of the policy's content: name, description, labels and rules."""
    content = {
        "name": policy.name,
        "description": policy.description,
        "labels": policy.labels,
        "rules": [rule_data(rule) for rule in policy.rules.order_by("position")],
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def guarded_write(policy: Policy, if_match: str | None, write: Callable[[], T]) -> T:
    """Run `write` in one transaction with the policy locked, after checking `If-Match`
    against the policy as it stands (409 when stale). Without `If-Match` the write runs
    unconditionally, as the console's do."""
    with transaction.atomic():
        if if_match is not None:
            current = etag_of(locked_policy(policy))
            tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
            if "*" not in tags and current not in tags:
                raise APIError(
                    409,
                    "conflict",
                    "The policy changed since you read it: read it again, then retry.",
                    {"etag": current},
                )
        return write()


def with_etag(response: HttpResponse, policy: Policy) -> None:
    response["ETag"] = etag_of(policy)


IF_MATCH_DOC = "The policy's `ETag`: the write is refused with 409 if the policy changed since."


# ----------------------------------------------------------------------- schemas


class RuleResourceOut(Schema):
    id: uuid.UUID
    type: str = Field(description="The resource type, e.g. `compute:instances`.")
    name: str
    project: uuid.UUID


class RuleOut(Schema):
    id: uuid.UUID
    position: int
    effect: Literal["allow", "deny"]
    actions: list[str]
    scope: Literal["organization", "all_projects", "projects", "resources"]
    projects: list[uuid.UUID]
    resources: list[RuleResourceOut] = Field(
        description="For the scope `resources` (send their ids in `resources` to write). "
        "Empty when every resource it named was deleted: the rule then matches nothing."
    )
    condition: str


class AttachmentOut(Schema):
    type: Literal["user", "group", "application"]
    id: uuid.UUID = Field(description="A user's account id, a group's or an application's id.")
    label: str


class PolicySummaryOut(Schema):
    id: uuid.UUID
    kind: Literal["custom", "managed", "guardrail"]
    name: str
    description: str
    labels: list[str]
    created_at: datetime.datetime
    updated_at: datetime.datetime


class PolicyOut(PolicySummaryOut):
    etag: str
    rules: list[RuleOut]
    attachments: list[AttachmentOut]


class PolicyListOut(Schema):
    items: list[PolicySummaryOut]
    next: str | None = Field(description="The cursor of the next page; null on the last.")


class PolicyIn(Strict):
    name: str = Field(max_length=120)
    description: str = Field("", max_length=2000)
    labels: list[str] = Field(default_factory=list, max_length=50)


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.pk,
        position=rule.position,
        effect=rule.effect,
        actions=list(rule.actions),
        scope=rule.scope,
        # Read under the scope that chooses them only (selectors.policies.ordered_rules).
        projects=sorted(project.pk for project in rule.projects.all())
        if rule.scope == Rule.Scope.PROJECTS
        else [],
        resources=[
            RuleResourceOut(id=r.pk, type=r.type, name=r.name, project=r.project_id)
            for r in sorted(rule.resources.all(), key=lambda r: (r.type, r.name, r.pk))
        ]
        if rule.scope == Rule.Scope.RESOURCES
        else [],
        condition=rule.condition,
    )


def _attachment_out(attachment: PolicyAttachment) -> AttachmentOut:
    if attachment.membership_id:
        return AttachmentOut(
            type="user",
            id=attachment.membership.user_id,
            label=attachment.membership.user.email,
        )
    if attachment.group_id:
        return AttachmentOut(type="group", id=attachment.group_id, label=attachment.group.name)
    return AttachmentOut(
        type="application", id=attachment.application_id, label=attachment.application.name
    )


def _summary(policy: Policy) -> PolicySummaryOut:
    return PolicySummaryOut(
        id=policy.pk,
        kind=policy.kind,
        name=policy.name,
        description=policy.description,
        labels=list(policy.labels),
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


def policy_out(request: HttpRequest, policy: Policy, response: HttpResponse) -> PolicyOut:
    """The policy with its rules and its attachments in the organization; sets `ETag`."""
    organization = request.organization  # type: ignore[attr-defined]
    policy.refresh_from_db()
    etag = etag_of(policy)
    response["ETag"] = etag
    return PolicyOut(
        **_summary(policy).model_dump(),
        etag=etag,
        rules=[rule_out(rule) for rule in policy_selectors.ordered_rules(policy)],
        attachments=[
            _attachment_out(attachment)
            for attachment in attachment_selectors.attachments_of(policy, organization)
        ],
    )


def editable_policy_for(request: HttpRequest, policy_id: uuid.UUID) -> Policy:
    """A policy of the organization (or managed, refused read-only by the services); the
    guardrails are changed through `/guardrails`, never as a policy."""
    policy = policy_selectors.policy_for(
        organization=request.organization,  # type: ignore[attr-defined]
        policy_id=policy_id,
    )
    if policy.kind == Policy.Kind.GUARDRAIL:
        raise APIError(400, "invalid", "The guardrails are changed through /guardrails.")
    return policy


# -------------------------------------------------------------------- operations


@router.get(
    "/policies",
    response={200: PolicyListOut, **error_responses(400, 401, 403, 422)},
    operation_id="policies_list",
)
@api_requires("iam:policies:list")
def policies_list(request: HttpRequest, paging: Query[PageQuery]) -> PolicyListOut:
    """The organization's custom policies and the managed ones (not the guardrails), oldest
    first."""
    queryset = policy_selectors.visible_policies(request.organization).exclude(  # type: ignore[attr-defined]
        kind=Policy.Kind.GUARDRAIL
    )
    rows, cursor = page_of(queryset, paging)
    return PolicyListOut(items=[_summary(policy) for policy in rows], next=cursor)


@router.post(
    "/policies",
    response={201: PolicyOut, **error_responses(400, 401, 403, 422)},
    operation_id="policies_create",
)
@api_requires("iam:policies:create")
def policies_create(
    request: HttpRequest, response: HttpResponse, payload: PolicyIn
) -> Status[PolicyOut]:
    """Create an empty custom policy; add its rules with `POST /policies/{id}/rules`."""
    policy = policy_services.policy_create(
        organization=request.organization,  # type: ignore[attr-defined]
        name=payload.name,
        description=payload.description,
        labels=payload.labels,
        actor=acting_user(request),
        request=request,
    )
    return Status(201, policy_out(request, policy, response))


@router.get(
    "/policies/{policy_id}",
    response={200: PolicyOut, **error_responses(401, 403, 404, 422)},
    operation_id="policies_read",
)
@api_requires("iam:policies:read")
def policies_read(request: HttpRequest, response: HttpResponse, policy_id: uuid.UUID) -> PolicyOut:
    """A policy with its rules and attachments; its `ETag` header is the `If-Match` of
    writes to it."""
    policy = policy_selectors.policy_for(
        organization=request.organization,  # type: ignore[attr-defined]
        policy_id=policy_id,
    )
    return policy_out(request, policy, response)


@router.put(
    "/policies/{policy_id}",
    response={200: PolicyOut, **error_responses(400, 401, 403, 404, 409, 422)},
    operation_id="policies_update",
)
@api_requires("iam:policies:update")
@api_refuses_self_lockout
def policies_update(
    request: HttpRequest,
    response: HttpResponse,
    policy_id: uuid.UUID,
    payload: PolicyIn,
    if_match: str | None = Header(None, alias="If-Match", description=IF_MATCH_DOC),
) -> PolicyOut:
    """Rename a custom policy, change its description and labels."""
    policy = editable_policy_for(request, policy_id)
    policy = guarded_write(
        policy,
        if_match,
        lambda: policy_services.policy_update(
            policy=policy,
            name=payload.name,
            description=payload.description,
            labels=payload.labels,
            actor=acting_user(request),
            request=request,
        ),
    )
    return policy_out(request, policy, response)


@router.post(
    "/policies/{policy_id}/duplicate",
    response={201: PolicyOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="policies_duplicate",
)
@api_requires("iam:policies:create")
def policies_duplicate(
    request: HttpRequest, response: HttpResponse, policy_id: uuid.UUID
) -> Status[PolicyOut]:
    """Copy a custom or managed policy with its rules as "Copy of <name>", attached to
    nobody."""
    policy = policy_selectors.policy_for(
        organization=request.organization,  # type: ignore[attr-defined]
        policy_id=policy_id,
    )
    copy = policy_services.policy_duplicate(
        policy=policy,
        organization=request.organization,  # type: ignore[attr-defined]
        actor=acting_user(request),
        request=request,
    )
    return Status(201, policy_out(request, copy, response))


@router.delete(
    "/policies/{policy_id}",
    response={204: None, **error_responses(400, 401, 403, 404, 409, 422)},
    operation_id="policies_delete",
)
@api_requires("iam:policies:delete")
@api_refuses_self_lockout
def policies_delete(
    request: HttpRequest,
    policy_id: uuid.UUID,
    if_match: str | None = Header(None, alias="If-Match", description=IF_MATCH_DOC),
) -> Status[None]:
    """Delete a custom policy with its rules and attachments."""
    policy = editable_policy_for(request, policy_id)
    guarded_write(
        policy,
        if_match,
        lambda: policy_services.policy_delete(
            policy=policy, actor=acting_user(request), request=request
        ),
    )
    return Status(204, None)
