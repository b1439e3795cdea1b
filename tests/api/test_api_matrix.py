"""Every API operation, called with each persona's key: the role matrix of the whole API.

The operations are found by walking the mounted NinjaAPI (`iamportal.api.api`), as
tests/iamportal/test_url_matrix.py walks the console's URLconf; their path parameters
point at a world of objects of the organization (tests/urls.py `make_world`). For each
operation, with a key of the owner, tech, billing and read-only users:

- a member gets 403 naming the action exactly when the evaluator denies it (computed
  with the code the guard uses, `tests.api.conftest.allowed`, in the world's project for
  project-level actions); otherwise never 401, 403, 404 (the objects exist) or 5xx;
- a key of another organization's owner (the outsider) gets 404 for every operation
  naming one of our objects, and never 403 nor any of our objects' ids elsewhere.

Ninja validates the path, query and body (422) before it calls the operation, so before
the guard: each operation is called with a minimal valid body (`BODIES`), which makes
the 403 exact; an empty `{}` body is also sent, and may answer 422 to anyone.

Each call runs in a savepoint rolled back afterwards, so a persona's allowed write
(delete, suspend) leaves the world intact for the next persona.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from ninja.utils import normalize_path

from iamportal.api import api
from policies import catalogue
from policies.authz import forget_organization
from tests.api.conftest import API, PERSONAS, allowed, call, persona_api
from tests.conftest import Org
from tests.factories import ResourceFactory
from tests.urls import World, make_world

# Operations any live key may call (`@api_any_key`): each must be a deliberate choice.
ANY_KEY_OPERATIONS = {"me"}
_PARAMETER = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Operation:
    """One method of one API path, with what its guard declares."""

    operation_id: str
    method: str
    path: str  # "/groups/{group_id}", under /api/v1
    declared: bool  # the view carries the guard's `iam_action` (an action or None)
    action: str | None  # None: `@api_any_key`
    project_param: str | None
    description: str
    # Resource operations also decide their type's `verb` action (organizations/api/
    # resources.py); the world's resources and bodies are compute instances.
    resource_verb: str | None = None

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action the operation decides, in the order it decides them."""
        declared = (self.action,) if self.action else ()
        typed = (f"compute:instances:{self.resource_verb}",) if self.resource_verb else ()
        return declared + typed

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_PARAMETER.findall(self.path))

    def __str__(self) -> str:
        return self.operation_id


def api_operations() -> list[Operation]:
    """Every operation of the mounted API, in mounting order (ninja's bound routers ->
    path operations -> operations; the routers are bound once, when the URLs are built)."""
    found = []
    for router in api._get_bound_routers():
        for route, path_view in router.path_operations.items():
            for operation in path_view.operations:
                view = operation.view_func
                for method in operation.methods:
                    found.append(
                        Operation(
                            operation_id=operation.operation_id
                            or api.get_openapi_operation_id(operation),
                            method=method,
                            path=normalize_path(f"/{router.prefix}/{route}"),
                            declared=hasattr(view, "iam_action"),
                            action=getattr(view, "iam_action", None),
                            project_param=getattr(view, "iam_project_param", None),
                            description=operation.description or view.__doc__ or "",
                            resource_verb=getattr(view, "iam_resource_verb", None),
                        )
                    )
    return found


OPERATIONS = api_operations()

# ----------------------------------------------------------------------------- inputs

# Path parameters by name, pointing at the world's objects.
PARAMS: dict[str, Callable[[World], Any]] = {
    "api_key_id": lambda w: w.api_key.pk,  # an application's key: no persona is its bearer
    "application_id": lambda w: w.application.pk,
    "event_id": lambda w: w.event_public_id,
    "group_id": lambda w: w.group.pk,
    "invitation_id": lambda w: w.invitation.pk,
    "membership_id": lambda w: w.subject.pk,
    "policy_id": lambda w: w.policy.pk,
    "project_id": lambda w: w.project.pk,
    # An instance in the world's project (the project its guard decides in).
    "resource_id": lambda w: ResourceFactory(project=w.project, type="compute:instances").pk,
    "rule_id": lambda w: w.rule.pk,
    "number": lambda w: 1,  # a version of the world's policy
    "user_id": lambda w: w.subject.user_id,  # a user's account id, as /authorize names them
    # The policy is attached to the world's group (and subject and application).
    "kind": lambda w: "group",
    "principal_id": lambda w: w.group.pk,
}


def _rule(w: World) -> dict[str, Any]:
    return {
        "effect": "allow",
        "actions": ["compute:instances:read"],
        "scope": "projects",
        "projects": [str(w.project.pk)],
    }


def _question(w: World) -> dict[str, Any]:
    return {"principal": {"type": "user", "id": str(w.subject.user_id)}, "action": "iam:users:list"}


# Required query parameters.
QUERIES: dict[str, str] = {
    "resources_list": "type=compute:instances",
    "who_can": "action=iam:users:list",
}

# A minimal valid body of each operation that reads one, naming our objects where it can
# (so the outsider's call names them too).
BODIES: dict[str, Callable[[World], Any]] = {
    "api_keys_create": lambda w: {"bearer": {"type": "application", "id": str(w.application.pk)}},
    "applications_create": lambda w: {"name": "matrix application"},
    "applications_update": lambda w: {"description": "changed by the matrix"},
    "applications_delete": lambda w: {"confirm_name": w.application.name},
    "applications_set_tags": lambda w: {"tags": {"team": "web"}},
    "authorize": lambda w: {"questions": [_question(w)]},
    "groups_create": lambda w: {"name": "matrix group"},
    "groups_update": lambda w: {"description": "changed by the matrix"},
    "guardrails_rule_add": lambda w: {**_rule(w), "effect": "deny"},
    "invitations_create": lambda w: {
        "emails": ["matrix@example.com"],
        "groups": [str(w.group.pk)],
    },
    "policies_attach": lambda w: {"type": "group", "id": str(w.group.pk)},
    "policies_create": lambda w: {"name": "matrix policy"},
    "policies_update": lambda w: {"name": w.policy.name},
    "projects_create": lambda w: {"name": "matrix-project"},
    "projects_update": lambda w: {"description": "changed by the matrix"},
    "projects_delete": lambda w: {"confirm_name": w.project.name},
    "resources_create": lambda w: {
        "type": "compute:instances",
        "name": "matrix-instance",
        "tags": {"team": "web"},
    },
    "resources_update": lambda w: {"tags": {"team": "data"}},
    "rules_add": _rule,
    "rules_update": _rule,
    "rules_move": lambda w: {"direction": "down"},
    "security_update": lambda w: {"mfa_grace_days": w.organization.mfa_grace_days},
    "simulator": lambda w: _question(w),
    "users_set_tags": lambda w: {"tags": {"team": "web"}},
}


def _path(operation: Operation, world: World) -> str:
    path = _PARAMETER.sub(lambda m: str(PARAMS[m[1]](world)), operation.path)
    query = QUERIES.get(operation.operation_id)
    return f"{path}?{query}" if query else path


def _body(operation: Operation, world: World) -> Any:
    """The operation's valid body; `{}` for another write, nothing for a read."""
    if operation.operation_id in BODIES:
        return BODIES[operation.operation_id](world)
    return None if operation.method == "GET" else {}


# ---------------------------------------------------------------------------- calling


@dataclass
class Answer:
    status: int
    content: str

    def error(self) -> dict[str, Any]:
        try:
            return json.loads(self.content).get("error") or {}
        except (ValueError, AttributeError):
            return {}

    def __str__(self) -> str:
        return f"{self.status} {self.content[:300]}"


def _answer(org: Org, client: API, operation: Operation, path: str, body: Any) -> Answer:
    """Call the operation in a savepoint rolled back afterwards (its writes vanish; the
    rule sets compiled meanwhile are dropped with them)."""
    with transaction.atomic():
        response = call(client, operation.method, path, body)
        raw = b"".join(response.streaming_content) if response.streaming else response.content
        transaction.set_rollback(True)
    forget_organization(org.organization.pk)
    return Answer(response.status_code, raw.decode(errors="replace"))


def _member_problems(answer: Answer, denied: bool, action: str | None, *, empty: bool) -> str:
    """What is wrong with a member's answer ('' when nothing). `empty`: the body was `{}`,
    which ninja may refuse (422) before the guard runs."""
    error = answer.error()
    if empty and answer.status == 422 and error.get("code") == "validation_error":
        return ""
    if denied:
        if answer.status != 403 or error.get("code") != "permission_denied":
            return f"{answer}, expected 403 ({action} denied)"
        if error.get("details", {}).get("permission") != action:
            return f"the 403 names {error.get('details')}, expected {action}"
        return ""
    # The world's objects exist and every body is valid: an allowed key is never refused
    # (not even `delegation_refused`: no body grants more than the persona holds).
    if answer.status in (401, 403, 404) or answer.status >= 500:
        return f"{answer} ({action} allowed)"
    return ""


def _our_ids(org: Org, world: World) -> list[str]:
    """Identifiers of this organization's objects, none of which an outsider may see."""
    values: list[Any] = [org.organization.pk, world.event_public_id, world.api_key.access_key]
    for obj in (world.project, world.subject, world.group, world.application, world.api_key):
        values.append(obj.pk)
    values += [world.policy.pk, world.rule.pk, world.invitation.pk, world.subject.user_id]
    for who in PERSONAS:
        membership = getattr(org, who)
        values += [membership.pk, membership.user_id, json.dumps(membership.user.email)]
    # Integer ids would match any number; every id here is a UUID or a long string.
    return [str(value) for value in values if len(str(value)) >= 16]


def _outsider_problems(
    org: Org, world: World, operation: Operation, body: Any, answer: Answer
) -> str:
    """What is wrong with the outsider's answer ('' when nothing): our objects do not
    exist for it, whether named in the path (404) or in the body (404, or 400 when a
    form-like field refuses them, as for any unknown id); anything else answers about
    its own organization and shows none of ours."""
    ours = _our_ids(org, world)
    named = operation.params or any(value in json.dumps(body, default=str) for value in ours)
    expected = (404,) if operation.params else (400, 404)
    if named:
        return "" if answer.status in expected else f"{answer}, expected 404 (names ours)"
    if answer.status in (401, 403) or answer.status >= 500:
        return f"{answer}, expected its own organization's answer"
    seen = [value for value in ours if value in answer.content]
    return f"{answer}: shows our {seen}" if seen else ""


# ------------------------------------------------------------------------------ tests


def test_the_walk_finds_every_operation() -> None:
    ids = [str(operation) for operation in OPERATIONS]
    assert len(ids) >= 50 and len(ids) == len(set(ids))
    for known in ("me", "authorize", "groups_add_user", "projects_read", "audit_events_export"):
        assert known in ids
    assert any(operation.project_param for operation in OPERATIONS)
    # The same operations as the published schema.
    schema = api.get_openapi_schema()
    published = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert published == set(ids)


def test_every_operation_is_guarded_default_deny() -> None:
    """Each declares `@api_requires(action)` or `@api_any_key`; only the listed ones the
    latter. A project-level action names the parameter holding its project."""
    for operation in OPERATIONS:
        assert operation.declared, f"{operation}: no @api_requires or @api_any_key"
        if operation.resource_verb is not None:  # the type's action, in the project
            assert operation.action is None, operation
            assert operation.project_param in operation.params, operation
            continue
        if operation.action is None:
            assert str(operation) in ANY_KEY_OPERATIONS, f"{operation}: any key may call it"
            continue
        assert catalogue.is_valid_action(operation.action), operation
        level = catalogue.ACTIONS[operation.action].level
        if level == catalogue.ORGANIZATION:
            assert operation.project_param is None, operation
        else:
            assert operation.project_param in operation.params, operation


def test_every_operation_has_its_inputs() -> None:
    """A new path parameter or body: add it to PARAMS or BODIES above."""
    schema = api.get_openapi_schema()
    with_body = {
        op["operationId"]
        for item in schema["paths"].values()
        for op in item.values()
        if "requestBody" in op
    }
    assert with_body == set(BODIES), "add a minimal valid body to BODIES"
    for operation in OPERATIONS:
        missing = set(operation.params) - set(PARAMS)
        assert not missing, f"{operation}: add {missing} to PARAMS"


def test_every_operations_description_names_its_permission() -> None:
    """The description of each operation in the schema names the very action its guard
    checks (tests/api/test_schema.py checks that every description has the line)."""
    schema = api.get_openapi_schema()
    descriptions = {
        op["operationId"]: op["description"]
        for item in schema["paths"].values()
        for op in item.values()
    }
    for operation in OPERATIONS:
        if operation.resource_verb is not None:
            line = f"**Required permission:** its type's `{operation.resource_verb}` action"
        elif operation.action is None:
            line = "**Required permission:** none (any live API key)."
        else:
            line = f"**Required permission:** `{operation.action}`."
        assert line in descriptions[str(operation)], operation


def test_body_validation_precedes_the_guard(org: Org) -> None:
    """Ninja validates the body before calling the operation: a key denied the action
    gets 422 for a malformed body (the schema is public), 403 for a valid one."""
    assert not allowed(org.readonly, "iam:groups:create")
    client = persona_api(org, "readonly")
    assert client.post("/groups", {}).status_code == 422
    response = client.post("/groups", {"name": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["details"]["permission"] == "iam:groups:create"


@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_operation_answers_each_key_as_the_evaluator_decides(
    operation: Operation, org: Org
) -> None:
    world = make_world(org.organization, actor=org.owner)
    path = _path(operation, world)
    body = _body(operation, world)
    project = world.project.pk if operation.project_param else None
    problems: list[str] = []

    for who in PERSONAS:
        client = persona_api(org, who)
        refused = next(
            (a for a in operation.actions if not allowed(getattr(org, who), a, project)), None
        )
        denied = refused is not None
        answer = _answer(org, client, operation, path, body)
        if problem := _member_problems(answer, denied, refused, empty=False):
            problems.append(f"{who}: {problem}")
        if operation.operation_id in BODIES:
            answer = _answer(org, client, operation, path, {})
            if problem := _member_problems(answer, denied, refused, empty=True):
                problems.append(f"{who} with {{}}: {problem}")

    answer = _answer(org, persona_api(org, "outsider"), operation, path, body)
    if problem := _outsider_problems(org, world, operation, body, answer):
        problems.append(f"outsider: {problem}")

    assert not problems, (
        f"{operation.method} {path} [{operation}, {operation.action}]:\n" + "\n".join(problems)
    )
