"""API fixtures: keys made through the service (real secrets), and a client that presents
them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from organizations.models import Application, Membership
from organizations.services import api_keys as api_key_services
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
