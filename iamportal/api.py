"""The REST API, mounted once at `/api/v1/`: django-ninja, API key authentication, the one
error shape, docs at `/api/v1/docs` and the OpenAPI 3.1 schema at `/api/v1/openapi.json`.

Each app keeps its operations in its `api/` package, one module per domain beside its
`services/` and `selectors/`; this module only mounts their routers.

At the Django level the API's URLs are declared `api` (policies.E001): no session sign-in
applies (Django's LoginRequiredMiddleware lets them through), because every operation is
authenticated here by API key and authorized by its `@api_requires` declaration; the
docs and the schema are public. Key requests are exempt from CSRF: the API never reads
a session, so a browser's cookies grant nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI, Swagger

from audit.api import events as audit_events
from iamportal import api_errors, api_ratelimit
from organizations.api import api_keys
from organizations.api.auth import API_KEY_AUTH
from policies.api import authorize

DESCRIPTION = """\
The IAM Portal API. Authenticate every call with an API key's token,
`<access_key>.<secret>` (the key's page shows it once, at creation), as
`Authorization: Bearer <token>` or `X-Auth-Token: <token>`. A key acts as its bearer
(a user or an application) in the key's organization: each operation names the
permission it requires. Errors have one shape: `{"error": {"code", "message", "details"}}`.
"""

api = NinjaAPI(
    title="IAM Portal API",
    version="1",
    description=DESCRIPTION,
    auth=API_KEY_AUTH,
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    # Swagger UI from the files django-ninja ships (static/ninja/), no CDN: the page's
    # scripts are same-origin files, which the strict CSP's script-src 'self' allows.
    docs=Swagger(settings={"persistAuthorization": False}),
)
api_errors.install(api)
api_ratelimit.install(api)
api.add_router("", authorize.router)
api.add_router("", api_keys.router)
for _mine in ("applications", "projects", "security"):
    api.add_router("", f"organizations.api.{_mine}.router")
api.add_router("", "organizations.api.resources.router")
api.add_router("", audit_events.router)
for _people in ("people", "invitations", "groups"):
    api.add_router("", f"organizations.api.{_people}.router")
for _module in ("policies", "rules", "versions", "attachments", "guardrails", "tools", "who_can"):
    api.add_router("", f"policies.api.{_module}.router")


def _declare_api(view: Callable[..., Any]) -> None:
    login_not_required(view)
    view.iam_access = "api"  # type: ignore[attr-defined]


def _declared(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            _declared(entry.url_patterns)
        else:
            # Every URL, the docs and schema included, behind the per-address rate limit.
            entry.callback = api_ratelimit.limited(api, entry.callback)
            _declare_api(entry.callback)
    return patterns


@login_not_required
def not_found(request: HttpRequest, rest: str) -> HttpResponse:
    """Any other path under /api/v1/: the API's 404, in its error shape (not the HTML page)."""
    return api_errors.error_response(api, request, 404, "not_found", "No such API path.")


not_found.iam_access = "api"  # type: ignore[attr-defined]


def urls() -> tuple[list[URLPattern | URLResolver], str]:
    """For `path("api/v1/", include(urls(), namespace="api"))`."""
    patterns, app_name, _namespace = api.urls
    patterns = _declared(list(patterns))
    patterns.append(path("<path:rest>", api_ratelimit.limited(api, not_found), name="not-found"))
    return patterns, app_name
