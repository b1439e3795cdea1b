"""Schemathesis against the live schema (issue #13): every operation of `/api/v1/openapi.json`,
called in-process through the WSGI application with a full-access key (the owner's) and a
read-only key (the readonly persona's), a few generated examples each. No 5xx, and every
response conforms to the schema (body and status code).

Bounded and deterministic: a handful of examples per operation, derandomized, no deadline.
The requests run in the test's own thread and transaction (pytest-django's `db`), so the
WSGI handler must not close the connection at the end of each request, as Django's test
client arranges too.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import key_token
from tests.conftest import Org
from tests.factories import (
    APIKeyFactory,
    ApplicationFactory,
    AuditEventFactory,
    GroupFactory,
    PolicyFactory,
    ProjectFactory,
    ResourceFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture
def _keep_connection() -> Iterator[None]:
    """The handler's request signals would close the test transaction's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(params=["owner", "readonly"])
def token(request: pytest.FixtureRequest, org: Org, _keep_connection: None) -> str:
    """A full-access key (the owner's) or a read-only key (ReadOnlyAccess)."""
    membership = getattr(org, request.param)
    return key_token(membership, membership)


@pytest.fixture
def real_ids(org: Org) -> dict[str, str]:
    """Ids of this organization's objects, by path parameter: half the examples name them
    (the other half a random id, a 404), so the operations reach their objects."""
    organization = org.organization
    application = ApplicationFactory(organization=organization)
    policy = PolicyFactory(organization=organization)
    rule = RuleFactory(policy=policy, position=1)
    ids = {
        "api_key_id": APIKeyFactory(bearer_application=application).pk,
        "application_id": application.pk,
        "project_id": ProjectFactory(organization=organization).pk,
        "resource_id": ResourceFactory(project__organization=organization).pk,
        "event_id": AuditEventFactory(organization=organization).pk,
        "membership_id": org.tech.pk,
        "principal_id": org.tech.pk,
        "user_id": org.tech.user_id,
        "group_id": GroupFactory(organization=organization).pk,
        "policy_id": policy.pk,
        "rule_id": rule.pk,
    }
    return {name: str(value) for name, value in ids.items()}


@schema.parametrize()
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_conforms_to_its_schema(
    case: schemathesis.Case, token: str, real_ids: dict[str, str]
) -> None:
    parameters = case.path_parameters or {}
    for name, value in parameters.items():
        # Deterministic: the same generated value always makes the same choice.
        if name in real_ids and zlib.crc32(str(value).encode()) % 2 == 0:
            parameters[name] = real_ids[name]
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
