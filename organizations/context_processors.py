from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from organizations.selectors.organizations import organization_choices


def current_organization(request: HttpRequest) -> dict[str, Any]:
    """The organization of the page (set by the view guard) and the switcher's choices."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
        # Lazy: only pages that draw the switcher run the query.
        "my_organizations": SimpleLazyObject(lambda: organization_choices(user)),
    }
