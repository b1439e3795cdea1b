"""The API's documentation and schema, its URLs' access declarations, and the one error
shape of refusals raised by services."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.management import call_command
from django.http import Http404
from django.test import Client, RequestFactory

from iamportal.api import api
from policies.delegation import DelegationRefused, Grant
from policies.guards import api_requires
from tests.api.conftest import API, key_token
from tests.conftest import Org

pytestmark = pytest.mark.django_db


def test_the_schema_is_openapi_3_1_and_names_each_operations_permission() -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"] == "3.1.0"
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert {op["operationId"] for op in operations} >= {"authorize", "me"}
    for operation in operations:
        assert "**Required permission:**" in operation["description"], operation["operationId"]
    authorize = schema["paths"]["/api/v1/authorize"]["post"]
    assert "`iam:authorize:check`" in authorize["description"]
    assert {"401", "403", "404", "422"} <= set(authorize["responses"])
    schemes = schema["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert any(s.get("name") == "X-Auth-Token" for s in schemes.values())


def test_the_docs_page_is_served_from_our_own_static_files_under_the_csp() -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert "cdn" not in page.lower() and "//" not in re.sub(r"<!--.*?-->", "", page).replace(
        "://", ""
    )
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts
    for attributes in scripts:
        # Executable scripts are same-origin files ('self'); the settings are inert JSON.
        assert 'type="application/json"' in attributes or 'src="/static/ninja/' in attributes
    for name in ("swagger-ui-bundle.js", "swagger-ui-init.js", "swagger-ui.css"):
        assert finders.find(f"ninja/{name}"), name
    assert "/api/v1/openapi.json" in page


def test_every_url_still_declares_its_access() -> None:
    call_command("check", fail_level="ERROR")  # policies.E001 among them


def test_api_guards_refuse_unknown_or_project_level_actions() -> None:
    with pytest.raises(ImproperlyConfigured):
        api_requires("iam:nothing:here")
    with pytest.raises(ImproperlyConfigured):
        api_requires("compute:instances:create")


def _error(exc: Exception, org: Org | None = None) -> tuple[int, dict[str, object]]:
    request = RequestFactory().post("/api/v1/x")
    if org is not None:
        request.organization = org.organization
        request.api_key = None
        request.user = org.owner.user
    response = api.on_exception(request, exc)
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return response.status_code, body["error"]


def test_service_refusals_answer_in_the_one_error_shape(org: Org) -> None:
    status, error = _error(ValidationError({"name": "Choose another name."}))
    assert status == 400 and error["details"] == {"name": ["Choose another name."]}
    status, error = _error(ValidationError("Nothing to do."))
    assert status == 400 and error["message"] == "Nothing to do."
    assert _error(Http404("Group matching query does not exist."))[1]["message"] == "Not found."
    assert _error(PermissionDenied())[0] == 403
    refused = DelegationRefused("You can only grant what you hold.", [Grant("billing:*", "x")])
    status, error = _error(refused, org)
    assert status == 403 and error["code"] == "delegation_refused"
    assert error["details"] == {"exceeding": [{"action": "billing:*", "where": "x"}]}


def test_every_operation_that_takes_input_documents_its_422(org: Org) -> None:
    """Found by schemathesis: a malformed id or query answered an undocumented 422, a body
    that is not JSON an undocumented 400."""
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    for operation in (op for item in paths.values() for op in item.values()):
        if operation.get("parameters") or operation.get("requestBody"):
            error = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorOut"}, operation["operationId"]
    assert "422" in paths["/api/v1/applications/{application_id}"]["get"]["responses"]
    token = key_token(org.owner, org.owner)
    response = API(token).get("/applications/not-an-id")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    # A body that is not JSON at all: ninja's 400, documented beside the 422.
    assert "400" in paths["/api/v1/authorize"]["post"]["responses"]
    response = API(token).client.post(
        "/api/v1/authorize",
        b"\xff\x00",
        content_type="application/json",
        headers=API(token).headers(None),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_no_two_schemas_share_a_name() -> None:
    """Found by schemathesis: two `RuleOut` (a policy's rule, a decision's matched rule) were
    one component in the schema, so GET /policies/{id} violated it; so were two
    `ApplicationPage`."""
    import importlib
    import inspect

    from ninja import Schema

    modules = ["audit.api.events", "iamportal.api_errors", "iamportal.api_paging"]
    modules += [f"organizations.api.{name}" for name in ("api_keys", "applications")]
    modules += [f"organizations.api.{name}" for name in ("groups", "invitations", "people")]
    modules += [f"organizations.api.{name}" for name in ("projects", "security")]
    modules += [f"policies.api.{name}" for name in ("attachments", "authorize", "guardrails")]
    modules += [f"policies.api.{name}" for name in ("policies", "rules", "tools")]
    seen: dict[str, type] = {}
    for module in map(importlib.import_module, modules):
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, Schema) and value is not Schema:
                assert seen.setdefault(value.__name__, value) is value, name
    components = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert "position" in components["RuleOut"]["properties"]
    assert "policy_id" in components["MatchedRuleOut"]["properties"]


def test_every_request_body_refuses_unknown_fields(org: Org) -> None:
    """A misspelt field is a 422, never silently ignored: every body schema (and every
    object nested in one) forbids additional properties."""
    schema = Client().get("/api/v1/openapi.json").json()
    components = schema["components"]["schemas"]
    seen: set[str] = set()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else []
            return found + [name for value in node.values() for name in refs(value)]
        if isinstance(node, list):
            return [name for value in node for name in refs(value)]
        return []

    pending = [
        name
        for item in schema["paths"].values()
        for operation in item.values()
        for name in refs(operation.get("requestBody", {}))
    ]
    assert pending, "no request bodies found"
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        body = components[name]
        if body.get("type") == "object":
            assert body.get("additionalProperties") is False, name
        pending.extend(refs(body))
    group = API(key_token(org.owner, org.owner)).post("/groups", {"name": "ops", "descripton": "x"})
    assert group.status_code == 422, group.content
