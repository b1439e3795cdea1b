"""A SCIM token of the `org` persona's organization, and a client that speaks SCIM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from organizations.models import Organization
from scim.tokens import CreatedToken, scim_token_create
from tests.conftest import Org

SCIM_JSON = "application/scim+json"


class ScimClient:
    """Requests as an identity provider sends them: bearer token, SCIM JSON bodies."""

    def __init__(self, organization: Organization, token: str) -> None:
        self.client = Client()
        self.base = f"/scim/v2/{organization.pk}/"
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        data = json.dumps(body) if body is not None else ""
        url = path if path.startswith("/") else self.base + path
        call = getattr(self.client, method.lower())
        return call(url, data=data or None, content_type=SCIM_JSON, headers=self.headers, **extra)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(self.base + path, params, headers=self.headers)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


@pytest.fixture
def created_token(org: Org) -> CreatedToken:
    return scim_token_create(organization=org.organization, actor=org.owner.user, name="Okta")


@pytest.fixture
def scim(org: Org, created_token: CreatedToken) -> ScimClient:
    return ScimClient(org.organization, created_token.value)


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": list(operations),
    }


def new_user(email: str, **extra: Any) -> dict[str, Any]:
    """A User as Okta POSTs it."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00u1abcd",
        "groups": [],
        "password": "ignored-Secret-1",
        "active": True,
        **extra,
    }
