"""API key authentication for the API: `Authorization: Bearer <token>` or
`X-Auth-Token: <token>`, the token being `<access_key>.<secret>`.

One indexed lookup by access key and a constant-time comparison of the secret's digest
(`organizations.services.api_keys.api_key_authenticate`). Sessions are never read: a
browser's cookie gives the API nothing, so no API request needs a CSRF token.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from accounts.models import User
from iamportal.api_errors import APIError, InvalidAPIKey
from iamportal.api_ratelimit import check_key
from iamportal.request import client_ip
from organizations.models import APIKey, Membership
from organizations.services.api_keys import api_key_authenticate_token
from policies.authz import bearer_of

# A token is about 70 characters; anything far longer is junk, refused before parsing.
_TOKEN_MAX_LENGTH = 256


def authenticate_token(request: HttpRequest, token: str) -> APIKey:
    """The live key `token` opens, set on the request for the guards and the audit trail
    (`request.api_key`, `request.organization`, `request.principal` and, for a user's key,
    `request.membership`); raises `InvalidAPIKey` (401) otherwise, `RateLimited` (429) when
    the key is over its rate limit."""
    api_key = None
    if len(token) <= _TOKEN_MAX_LENGTH:
        api_key = api_key_authenticate_token(token=token, ip=client_ip(request))
    if api_key is None:
        raise InvalidAPIKey
    check_key(api_key)  # over its limit: 429 (`RateLimited`), the operation does not run
    principal = bearer_of(api_key)
    request.api_key = api_key  # type: ignore[attr-defined]
    request.organization = api_key.organization  # type: ignore[attr-defined]
    request.principal = principal  # type: ignore[attr-defined]
    if isinstance(principal, Membership):
        request.membership = principal  # type: ignore[attr-defined]
    return api_key


class BearerToken(HttpBearer):
    """`Authorization: Bearer <access_key>.<secret>`."""

    def authenticate(self, request: HttpRequest, token: str) -> APIKey:
        return authenticate_token(request, token)


class AuthTokenHeader(APIKeyHeader):
    """`X-Auth-Token: <access_key>.<secret>`, for clients that keep `Authorization` for a
    proxy."""

    param_name = "X-Auth-Token"

    def authenticate(self, request: HttpRequest, key: str | None) -> APIKey | None:
        return authenticate_token(request, key) if key is not None else None


API_KEY_AUTH = [BearerToken(), AuthTokenHeader()]


def acting_user(request: HttpRequest) -> User | None:
    """The user a service names as actor: a user key's bearer; None for an application's
    key (the audit trail records the key itself either way, and the delegation ceiling
    judges the application, `request.principal`)."""
    membership = getattr(request, "membership", None)
    return membership.user if membership is not None else None


def acting_membership(request: HttpRequest) -> Membership:
    """The user key's bearer, for services whose actor is a membership (they check the
    last-owner and owner-only rules on it). Application keys cannot call them yet."""
    membership = getattr(request, "membership", None)
    if membership is None:
        raise APIError(
            403,
            "user_key_required",
            "This operation acts as a user of the organization: call it with a user's API key.",
        )
    return membership
