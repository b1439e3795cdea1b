from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.selectors import events_of
from organizations.views import paginate
from policies.guards import requires


@requires("audit:events:list")
@require_GET
def event_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    page = paginate(request, events_of(request.organization), per_page=50)
    return render(request, "audit/event_list.html", {"page": page})
