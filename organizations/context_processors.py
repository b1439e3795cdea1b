from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from organizations.models import Membership
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
        "acting_owner": acting_owner(request, membership),
        "my_organizations": choices
        if choices is not None
        else SimpleLazyObject(lambda: organization_choices(user)),
    }


def acting_owner(request: HttpRequest, membership: Membership | None) -> bool:
    """Does the page show an owner's controls and badge? While viewing as someone
    (policies.authz.ViewingAs), only when both the viewer and the target are owners, as
    decisions then are: never more than either holds."""
    owner = membership is not None and membership.is_owner
    view_as = getattr(request, "view_as", None)
    if view_as is None:
        return owner
    return owner and isinstance(view_as.target, Membership) and view_as.target.is_owner
