"""Request edges: refuse oversized bodies before anything reads them."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import loader


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
