"""Request edges: refuse oversized bodies before anything reads them; HTMX redirects."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django_htmx.http import HttpResponseClientRedirect


class RequestSizeLimitMiddleware:
    """Answer 413 to a body declared larger than `DATA_UPLOAD_MAX_MEMORY_SIZE`.

    First in MIDDLEWARE: the body is never read, so no form parser, CSRF check or view
    spends time on it. Django's own check (a 400) still covers bodies sent without a
    Content-Length.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # as Django reads it: no body
        if limit is not None and declared > limit:
            # Rendered without context processors: nothing about the request is loaded yet.
            page = loader.get_template("413.html").render({"limit_kib": limit // 1024})
            response = HttpResponse(page, status=413, content_type="text/html")
            response["Connection"] = "close"  # the unread body must not be taken as a request
            return response
        return self.get_response(request)


class HtmxRedirectMiddleware:
    """Turn a redirect answering an HTMX request into `HX-Redirect`.

    The browser follows a plain 302 inside htmx's request and htmx would swap the whole
    next page into the form's target (a page within the page, its messages shown there).
    A success redirect means "go there": htmx does that for `HX-Redirect`. One place for
    every HTMX form, so no view has to remember it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        htmx = getattr(request, "htmx", None)
        if htmx and not htmx.boosted and response.status_code in (301, 302, 303, 307, 308):
            return HttpResponseClientRedirect(response["Location"])
        return response
