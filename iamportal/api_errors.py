"""The API's one error shape, `{"error": {"code", "message", "details"}}`, for every
refusal: 400 (a service's `ValidationError`), 401, 403 (a denied permission, a
delegation refusal, `PermissionDenied`), 404, 409, 422 (request validation), 429.

Operations declare these responses with `error_responses(...)` so the schema documents
them; `install(api)` makes the exception handlers produce them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from policies.delegation import DelegationRefused, record_refusals
from policies.guards import APIAccessDenied

# The code of an HttpError raised with only a status (ninja's own, or a view's).
_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
    429: "rate_limited",
}


class ErrorBody(Schema):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(Schema):
    error: ErrorBody


class APIError(Exception):
    """A refusal an operation answers in the one shape, with its own code and details."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class InvalidAPIKey(Exception):
    """A key was presented and it opens no live key: unknown, revoked, expired or over the
    organization's lifetime cap, malformed, or its bearer suspended or removed."""


def error_responses(*statuses: int) -> dict[int, type[ErrorOut]]:
    """The documented error responses of an operation: `response={200: X,
    **error_responses(401, 403)}`."""
    return dict.fromkeys(statuses, ErrorOut)


def error_response(
    api: NinjaAPI,
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> HttpResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    response = api.create_response(request, body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """`questions.3.context.time` for ninja's `("body", "payload", "questions", 3, ...)`:
    the parameter source and the operation's argument name are not the client's."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form", "file"):
        parts = parts[2:] if parts[0] == "body" and len(parts) > 1 else parts[1:]
    return ".".join(str(part) for part in parts) or "__all__"


def _validation_details(errors: list[dict[str, Any]]) -> dict[str, Any]:
    details: dict[str, list[str]] = {}
    for error in errors:
        details.setdefault(_field(error.get("loc", ())), []).append(str(error.get("msg", "")))
    return details


_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


def _document(responses: dict[Any, Any], status: int, description: str) -> None:
    if status not in responses and str(status) not in responses:
        responses[status] = {"description": description, "content": _ERROR_CONTENT}


def _document_request_validation(api: NinjaAPI) -> None:
    """Whether or not an operation declared them, the schema says what any can answer: 422
    when it takes parameters or a body that do not match its schema, 400 when its body
    is not JSON at all (ninja's "Cannot parse request body")."""
    build = api.get_openapi_schema

    def get_openapi_schema(*args: Any, **kwargs: Any) -> Any:
        schema = build(*args, **kwargs)
        for item in schema["paths"].values():
            for operation in item.values():
                responses = operation["responses"]
                if operation.get("requestBody"):
                    _document(responses, 400, "Bad Request")
                if operation.get("parameters") or operation.get("requestBody"):
                    _document(responses, 422, "Unprocessable Entity")
        return schema

    api.get_openapi_schema = get_openapi_schema  # type: ignore[method-assign]


def install(api: NinjaAPI) -> None:
    """Register the handlers that turn refusals into the one error shape."""

    def on_request_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return error_response(
            api,
            request,
            422,
            "validation_error",
            "The request does not match the operation's schema.",
            _validation_details(exc.errors),
        )

    def on_service_invalid(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"__all__": list(exc.messages)}
        )
        message = " ".join(exc.messages) if not hasattr(exc, "error_dict") else "Invalid values."
        return error_response(api, request, 400, "invalid", message, details)

    def on_delegation_refused(request: HttpRequest, exc: DelegationRefused) -> HttpResponse:
        # The change rolled back with its service's transaction: record the refusal now.
        exceeding = [{"action": grant.action, "where": grant.where} for grant in exc.exceeding]
        record_refusals(request)
        return error_response(
            api, request, 403, "delegation_refused", exc.messages[0], {"exceeding": exceeding}
        )

    def on_access_denied(request: HttpRequest, exc: APIAccessDenied) -> HttpResponse:
        decision = exc.decision
        return error_response(
            api,
            request,
            403,
            "permission_denied",
            f"This key's bearer lacks the permission {decision.action}: {decision.explanation}",
            {
                "permission": decision.action,
                "reason": decision.reason,
                "explanation": decision.explanation,
            },
        )

    def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return error_response(
            api, request, 403, "permission_denied", str(exc) or "Permission denied."
        )

    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        # Http404's own message may name a model; "not found" is all an outsider learns.
        return error_response(api, request, 404, "not_found", "Not found.")

    def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return error_response(
            api,
            request,
            401,
            "authentication_required",
            "Authenticate with an API key: 'Authorization: Bearer <access_key>.<secret>' "
            "or 'X-Auth-Token: <access_key>.<secret>'.",
        )

    def on_invalid_key(request: HttpRequest, exc: InvalidAPIKey) -> HttpResponse:
        return error_response(
            api,
            request,
            401,
            "invalid_api_key",
            "The API key is malformed, unknown, revoked or expired, or its bearer is "
            "suspended or removed.",
        )

    def on_api_error(request: HttpRequest, exc: APIError) -> HttpResponse:
        return error_response(api, request, exc.status, exc.code, exc.message, exc.details)

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        status = exc.status_code
        return error_response(api, request, status, _CODES.get(status, "error"), str(exc))

    api.add_exception_handler(NinjaValidationError, on_request_invalid)
    _document_request_validation(api)
    api.add_exception_handler(DjangoValidationError, on_service_invalid)
    api.add_exception_handler(DelegationRefused, on_delegation_refused)
    api.add_exception_handler(APIAccessDenied, on_access_denied)
    api.add_exception_handler(PermissionDenied, on_permission_denied)
    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(AuthenticationError, on_unauthenticated)
    api.add_exception_handler(InvalidAPIKey, on_invalid_key)
    api.add_exception_handler(APIError, on_api_error)
    api.add_exception_handler(HttpError, on_http_error)
