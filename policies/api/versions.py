"""API operations on policy versions: list, read (with what it changed), restore.

A restore is a rule change like any other: `If-Match` against the policy's `ETag`, the
delegation ceiling (403 `delegation_refused`), the self-lockout check (409
`would_lock_out`), and it answers the policy as it now stands."""

from __future__ import annotations

import datetime
import uuid
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Header, Path, Query, Router, Schema

from iamportal.api_errors import error_responses
from iamportal.api_paging import PageQuery, page_of
from organizations.api.auth import acting_user
from policies.api.policies import (
    IF_MATCH_DOC,
    PolicyOut,
    editable_policy_for,
    guarded_write,
    policy_out,
)
from policies.guards import api_requires
from policies.lockout import api_refuses_self_lockout
from policies.models import Policy, PolicyVersion
from policies.selectors import policies as policy_selectors
from policies.selectors import versions as version_selectors
from policies.services import rules as rule_services

router = Router(tags=["Policies"])


def _number() -> object:
    """A version number in a path: bounded, so that none overflows a database integer."""
    return Path(..., ge=1, le=2_147_483_647, description="The version's number.")


class VersionSummaryOut(Schema):
    number: int
    change: str = Field(description='What the save did, e.g. "rule 2 added".')
    author: uuid.UUID | None = Field(description="The author's account id, if it still exists.")
    author_label: str = Field(description="The author as named then (kept after deletion).")
    created_at: datetime.datetime
    current: bool = Field(description="Whether this is the policy as it stands.")


class VersionListOut(Schema):
    items: list[VersionSummaryOut]
    next: str | None = Field(description="The cursor of the next page; null on the last.")


class VersionRuleOut(Schema):
    position: int
    effect: Literal["allow", "deny"]
    actions: list[str]
    scope: Literal["organization", "all_projects", "projects", "resources"]
    projects: list[uuid.UUID] = Field(description="As then: some may have been deleted since.")
    resources: list[uuid.UUID] = Field(description="As then: some may have been deleted since.")
    condition: str


class RuleChangeOut(Schema):
    position: int
    status: Literal["added", "removed", "changed"]
    fields: list[str] = Field(description="For `changed`: the fields that differ.")


class VersionOut(VersionSummaryOut):
    name: str
    description: str
    rules: list[VersionRuleOut]
    previous: int | None = Field(description="The number of the version compared with.")
    changes: list[RuleChangeOut] = Field(
        description="The rules compared with the previous version, position by position "
        "(unchanged positions left out)."
    )


class RestoredOut(PolicyOut):
    version: int = Field(description="The new version the restore made.")
    restored_version: int
    dropped: list[str] = Field(
        description="Projects and resources deleted since that version, left out."
    )


def _summary(version: PolicyVersion, policy: Policy) -> VersionSummaryOut:
    return VersionSummaryOut(
        number=version.number,
        change=version.change,
        author=version.author_id,
        author_label=version.author_label,
        created_at=version.created_at,
        current=version.number == policy.version,
    )


def _policy(request: HttpRequest, policy_id: uuid.UUID) -> Policy:
    return policy_selectors.policy_for(
        organization=request.organization,  # type: ignore[attr-defined]
        policy_id=policy_id,
    )


@router.get(
    "/policies/{policy_id}/versions",
    response={200: VersionListOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="policy_versions_list",
)
@api_requires("iam:policies:read")
def policy_versions_list(
    request: HttpRequest, policy_id: uuid.UUID, paging: Query[PageQuery]
) -> VersionListOut:
    """The policy's versions, oldest first (managed policies have none)."""
    policy = _policy(request, policy_id)
    rows, cursor = page_of(version_selectors.versions_of(policy), paging)
    return VersionListOut(items=[_summary(version, policy) for version in rows], next=cursor)


@router.get(
    "/policies/{policy_id}/versions/{number}",
    response={200: VersionOut, **error_responses(401, 403, 404, 422)},
    operation_id="policy_versions_read",
)
@api_requires("iam:policies:read")
def policy_versions_read(
    request: HttpRequest, policy_id: uuid.UUID, number: int = _number()
) -> VersionOut:
    """One version: its details and rules, and what it changed against the one before."""
    policy = _policy(request, policy_id)
    version = version_selectors.version_for(policy=policy, number=number)
    previous = version_selectors.previous_of(version)
    changes = version_selectors.compare(previous.rules if previous else [], version.rules)
    return VersionOut(
        **_summary(version, policy).model_dump(),
        name=version.name,
        description=version.description,
        rules=[
            VersionRuleOut(
                position=data["position"],
                effect=data["effect"],
                actions=data["actions"],
                scope=data["scope"],
                projects=data.get("projects", []),
                resources=data.get("resources", []),
                condition=data.get("condition", ""),
            )
            for data in sorted(version.rules, key=lambda data: data["position"])
        ],
        previous=previous.number if previous else None,
        changes=[
            RuleChangeOut(position=change.position, status=change.status, fields=change.fields)
            for change in changes
            if change.status != "same"
        ],
    )


@router.post(
    "/policies/{policy_id}/versions/{number}/restore",
    response={200: RestoredOut, **error_responses(400, 401, 403, 404, 409, 422)},
    operation_id="policy_versions_restore",
)
@api_requires("iam:policies:update")
@api_refuses_self_lockout
def policy_versions_restore(
    request: HttpRequest,
    response: HttpResponse,
    policy_id: uuid.UUID,
    number: int = _number(),
    if_match: str | None = Header(None, alias="If-Match", description=IF_MATCH_DOC),
) -> RestoredOut:
    """Replace a custom policy's rules with those of one of its versions, as a new
    version (projects and resources deleted since are left out, listed in `dropped`)."""
    policy = editable_policy_for(request, policy_id)
    version = version_selectors.version_for(policy=policy, number=number)
    restored = guarded_write(
        policy,
        if_match,
        lambda: rule_services.policy_restore(
            policy=policy, version=version, actor=acting_user(request), request=request
        ),
    )
    return RestoredOut(
        **policy_out(request, policy, response).model_dump(),
        version=restored.version.number,
        restored_version=number,
        dropped=restored.dropped,
    )
