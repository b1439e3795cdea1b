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
    membership = getattr(request, "membership", None)
    # Usually read with the membership (selectors.organizations.membership_for); else
    # lazy: only pages that draw the switcher run the query.
    choices = getattr(membership, "organization_choices", None)
    return {
        "organization": getattr(request, "organization", None),
        "membership": membership,
        "my_organizations": choices
        if choices is not None
        else SimpleLazyObject(lambda: organization_choices(user)),
    }
