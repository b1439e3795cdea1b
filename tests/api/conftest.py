"""API fixtures: keys made through the service (real secrets), and a client that presents
them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from organizations.models import Application, Membership, Organization
from organizations.services import api_keys as api_key_services
from policies.authz import decide_for
from policies.evaluator import RequestFacts
from policies.models import PolicyAttachment, Rule
from tests.conftest import Org
from tests.factories import ApplicationFactory, PolicyFactory, RuleFactory


class API:
    """Calls `/api/v1/…` with a token in `Authorization: Bearer` (or `X-Auth-Token`)."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def headers(self, token: str | None) -> dict[str, str]:
        token = token if token is not None else self.token
        return {"Authorization": f"Bearer {token}"} if token is not None else {}

    def get(
        self,
        path: str,
        token: str | None = None,
        meta: dict[str, str] | None = None,
        **headers: str,
    ) -> Any:
        """`meta`: WSGI environ entries (REMOTE_ADDR); `headers`: HTTP headers."""
        return self.client.get(
            f"/api/v1{path}", headers={**self.headers(token), **headers}, **(meta or {})
        )

    def post(self, path: str, body: Any, token: str | None = None, **headers: str) -> Any:
        return self.client.post(
            f"/api/v1{path}",
            json.dumps(body),
            content_type="application/json",
            headers={**self.headers(token), **headers},
        )


def key_token(bearer: Membership | Application, creator: Membership, **kwargs: Any) -> str:
    """A real key made by the service; returns its token `<access_key>.<secret>`."""
    created = api_key_services.api_key_create(
        organization=creator.organization, creator=creator, bearer=bearer, **kwargs
    )
    return api_key_services.api_key_token(
        access_key=created.api_key.access_key, secret=created.secret
    )


def allow(principal: Membership | Application, *actions: str, **rule: Any) -> None:
    """Attach to `principal` a custom policy with one allow rule of `actions`."""
    policy = PolicyFactory(organization=principal.organization)
    RuleFactory(policy=policy, position=1, actions=list(actions), **rule)
    field = "membership" if isinstance(principal, Membership) else "application"
    PolicyAttachment.objects.create(
        policy=policy, organization=principal.organization, **{field: principal}
    )


@pytest.fixture
def service(org: Org) -> Application:
    """An application holding `iam:authorize:check`, as a platform service would."""
    application = ApplicationFactory(organization=org.organization, name="platform")
    allow(application, "iam:authorize:check", scope=Rule.Scope.ORGANIZATION)
    return application


@pytest.fixture
def service_api(org: Org, service: Application) -> API:
    return API(key_token(service, org.owner))


# ------------------------------------------------------------- helpers of the operations' tests

PERSONAS = ["owner", "tech", "billing", "readonly"]


def call(api: API, method: str, path: str, body: Any = None) -> Any:
    """Any method, with a JSON body when given."""
    return api.client.generic(
        method,
        f"/api/v1{path}",
        json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers=api.headers(None),
    )


def persona_api(org: Org, who: str) -> API:
    """A client with a key of persona `who`; `outsider` owns another organization."""
    if who == "outsider":
        membership = Membership.objects.get(user=org.outsider)
    else:
        membership = getattr(org, who)
    return API(key_token(membership, membership))


def allowed(subject: Membership | Application, action: str, project: object = None) -> bool:
    """What the evaluator decides for `subject`: the role tests' expectation."""
    facts = RequestFacts(ip="127.0.0.1", user_agent="", time=timezone.now())
    return decide_for(subject, action, project, facts).allowed


def last_event(organization: Organization, action: events.EventType) -> AuditEvent:
    """The latest such event, which an API call records as its key's."""
    event = AuditEvent.objects.filter(organization=organization, action=action.name).latest("id")
    assert event.actor_type == "api_key"
    return event


def version(organization: Organization) -> int:
    organization.refresh_from_db()
    return organization.authz_version


def check_role(org: Org, who: str, response: Any, action: str, *, listing: bool) -> None:
    """The persona's answer: as the evaluator decides `action`; an outsider's key sees
    nothing of this organization (its own, empty-of-ours list, or 404)."""
    if who == "outsider":
        assert response.status_code == (200 if listing else 404), response.content
        return
    if allowed(getattr(org, who), action):
        assert response.status_code in (200, 201, 204), response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["details"]["permission"] == action
