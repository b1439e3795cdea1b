"""The product's URLs plus `POST /bench/trivial`, the bench's baseline: parse a JSON body,
answer a JSON object. Served only under `benchmarks.bench_settings`."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from iamportal.urls import handler403, handler404, handler500
from iamportal.urls import urlpatterns as product_urls
from policies.guards import public


@public
@csrf_exempt
@require_POST
def trivial(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body or b"{}")
    return JsonResponse({"ok": True, "questions": len(body.get("questions", []))})


urlpatterns = [path("bench/trivial", trivial), *product_urls]

__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]
