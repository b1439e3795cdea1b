from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from organizations import selectors
from organizations.views import paginate
from policies.guards import requires


@requires("iam:users:list")
@require_GET
def user_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    page = paginate(request, selectors.members_of(request.organization))
    return render(request, "organizations/iam/user_list.html", {"page": page})
