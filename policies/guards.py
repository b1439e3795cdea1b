"""Access declarations for views and API operations.

Every view names what it needs: `@public` (no sign-in), `@signed_in` (any signed-in
user, no organization), or `@requires("service:resource:verb")` for organization pages.
The system check `policies.E001` refuses any URL whose view declares none of these.

API operations (iamportal.api) are authenticated by key before they run; each declares
`@api_requires("service:resource:verb")` or `@api_any_key`, which also write the required
permission into the operation's documentation.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from audit.services import record_access_denied
from organizations.models import Membership, Resource
from organizations.selectors.organizations import membership_for
from organizations.selectors.projects import project_for
from organizations.selectors.resources import resource_for
from policies import catalogue
from policies.authz import (
    SAFE_METHODS,
    authorize,
    deny_response,
    read_only_decision,
    view_as_entry,
    viewing_as,
)
from policies.delegation import DelegationRefused, record_refusals, refused_response
from policies.evaluator import Decision

View = Callable[..., HttpResponse]


def public(view: View) -> View:
    """Anyone, signed in or not, may open this view."""
    view = login_not_required(view)
    view.iam_access = "public"  # type: ignore[attr-defined]
    return view


def signed_in(view: View) -> View:
    """Any signed-in user; the view touches no organization's data but the user's own.

    Those of an organization (URL kwarg `org_id`: leaving it, stepping down) are read-only
    while viewing it as someone, as guarded views are (policies.authz), unless the view
    is `allowed_while_viewing_as` (stopping to view).
    """
    if getattr(view, "allowed_while_viewing_as", False):
        view.iam_access = "signed_in"  # type: ignore[attr-defined]
        return view

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        org_id = kwargs.get("org_id")
        if (
            org_id is not None
            and request.method not in SAFE_METHODS
            and view_as_entry(request, org_id)
        ):
            _enter_organization(request, org_id)
            if (viewing := viewing_as(request)) is not None:
                name = request.resolver_match.view_name if request.resolver_match else ""
                return deny_response(request, read_only_decision(viewing, name))
        return view(request, *args, **kwargs)

    guarded.iam_access = "signed_in"  # type: ignore[attr-defined]
    return guarded


def _enter_organization(request: HttpRequest, org_id: Any) -> Membership:
    """The user's membership of organization `org_id` (outsiders: 404), set on the request
    with its organization."""
    # The security middleware has usually read this membership already.
    membership = getattr(request, "security_membership", None)
    if membership is None or str(membership.organization_id) != str(org_id):
        membership = membership_for(user=request.user, organization_id=org_id)
    request.membership = membership  # type: ignore[attr-defined]
    request.organization = membership.organization  # type: ignore[attr-defined]
    return membership


def requires(action: str, *, project_kwarg: str | None = None) -> Callable[[View], View]:
    """Guard an organization view (URL kwarg `org_id`) with one catalogue action.

    Outsiders get 404 (the organization does not exist for them); members without the
    permission get the 403 page naming it. For project-level actions, `project_kwarg`
    names the URL kwarg holding the project id, resolved inside the organization.
    """
    if not catalogue.is_valid_action(action):
        raise ImproperlyConfigured(f"@requires names an unknown action {action!r}.")

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, org_id: Any, **kwargs: Any) -> HttpResponse:
            membership = _enter_organization(request, org_id)
            project = None
            if project_kwarg is not None:
                project = project_for(
                    organization=membership.organization, project_id=kwargs[project_kwarg]
                )
                request.project = project  # type: ignore[attr-defined]
            request.iam_action = action  # type: ignore[attr-defined]
            decision = authorize(request, action, project_id=project.pk if project else None)
            if not decision.allowed:
                return deny_response(request, decision)
            try:
                response = view(request, org_id=org_id, **kwargs)
            except DelegationRefused as refused:
                response = refused_response(request, refused)
            # A refused grant is recorded now that the change it belonged to rolled back.
            record_refusals(request)
            return response

        guarded.iam_access = "action"  # type: ignore[attr-defined]
        guarded.iam_action = action  # type: ignore[attr-defined]
        guarded.iam_project_kwarg = project_kwarg  # type: ignore[attr-defined]
        return guarded

    return decorator


def resource_in(request: HttpRequest, resource_id: object) -> Resource:
    """The request organization's resource (another organization's is a 404), set as
    `request.resource` and its project as `request.project`."""
    resource = resource_for(
        organization=request.organization,  # type: ignore[attr-defined]
        resource_id=resource_id,
    )
    request.resource = resource  # type: ignore[attr-defined]
    request.project = resource.project  # type: ignore[attr-defined]
    return resource


def decide_on_type(
    request: HttpRequest,
    resource_type: str,
    verb: str,
    project_id: object,
    resource: Resource | None = None,
) -> Decision:
    """Decide the `verb` action of a resource type (`compute:instances`...) in a project,
    or on one of its resources (then rules scoped to it and conditions on its tags take
    part): a resource's actions depend on its type, which no static declaration can name."""
    action = catalogue.RESOURCE_TYPES[resource_type].action(verb)
    request.iam_action = action  # type: ignore[attr-defined]
    return authorize(request, action, project_id=project_id, resource=resource)


def _check_verb(verb: str) -> None:
    for resource_type in catalogue.RESOURCE_TYPES.values():
        resource_type.action(verb)  # an unknown verb fails at import, as @requires does


def requires_on_resource(verb: str) -> Callable[[View], View]:
    """`@requires` for a view of one resource (URL kwarg `resource_id`): its type's `verb`
    action, decided on the resource. Outsiders get 404, and so does another organization's
    resource; the view finds it in `request.resource`, its project in `request.project`.
    """
    _check_verb(verb)

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, org_id: Any, resource_id: Any) -> HttpResponse:
            _enter_organization(request, org_id)
            resource = resource_in(request, resource_id)
            decision = decide_on_type(request, resource.type, verb, resource.project_id, resource)
            if not decision.allowed:
                return deny_response(request, decision)
            return view(request, org_id=org_id, resource_id=resource_id)

        guarded.iam_access = "action"  # type: ignore[attr-defined]
        # The action depends on the resource's type: tests/urls.py decides it from these.
        guarded.iam_action = None  # type: ignore[attr-defined]
        guarded.iam_resource_kwarg = "resource_id"  # type: ignore[attr-defined]
        guarded.iam_resource_verb = verb  # type: ignore[attr-defined]
        return guarded

    return decorator


# ------------------------------------------------------------------------------- API


class APIAccessDenied(Exception):
    """An API key's bearer may not do the operation's action: answered 403 with the
    decision's explanation (iamportal.api)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.explanation)
        self.decision = decision


def _api_operation(view: Callable[..., Any], guarded: Callable[..., Any], access: str) -> None:
    # Ninja reads the operation's parameters and their types from the signature; the
    # annotations are resolved here, in the view's module (the wrapper's globals are ours).
    guarded.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
    doc = inspect.cleandoc(view.__doc__ or "")
    guarded.__doc__ = f"{doc}\n\n{access}".strip()


def api_deny(request: HttpRequest, decision: Decision) -> APIAccessDenied:
    """Audit a denied API operation with the key as the actor; the exception to raise
    (answered 403 naming the action and the decision's explanation)."""
    api_key = request.api_key  # type: ignore[attr-defined]
    record_access_denied(
        organization=api_key.organization,
        actor=api_key,
        permission=decision.action,
        data={"action": decision.action, "explanation": decision.explanation},
        request=request,
    )
    return APIAccessDenied(decision)


def api_operation(view: Callable[..., Any], guarded: Callable[..., Any], action: str) -> None:
    """Give `guarded` the operation's signature and a description naming `action`."""
    _api_operation(view, guarded, f"**Required permission:** `{action}`.")
    guarded.iam_action = action  # type: ignore[attr-defined]


def api_requires(
    action: str, *, project_param: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard an API operation with one catalogue action, decided for the key's bearer (a
    user or an application) with the request's facts.

    Organization-level actions are decided for the organization. For project-level
    actions, `project_param` names the path parameter holding the project id: the
    project is found in the key's organization (another's is a 404), set as
    `request.project`, and the action decided in it (the console's `project_kwarg`).

    A denial is audited with the key as the actor and answered 403 naming the action
    and the decision's explanation. The action goes into the operation's description,
    from this declaration, so the documentation cannot drift from the check.
    """
    if not catalogue.is_valid_action(action):
        raise ImproperlyConfigured(f"@api_requires names an unknown action {action!r}.")
    if catalogue.ACTIONS[action].level != catalogue.ORGANIZATION and project_param is None:
        raise ImproperlyConfigured(
            f"@api_requires: {action!r} is a project-level action: name its project_param."
        )

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            project = None
            if project_param is not None:
                project = project_for(
                    organization=request.organization,  # type: ignore[attr-defined]
                    project_id=kwargs[project_param],
                )
                request.project = project  # type: ignore[attr-defined]
            request.iam_action = action  # type: ignore[attr-defined]
            decision = authorize(request, action, project_id=project.pk if project else None)
            if not decision.allowed:
                raise api_deny(request, decision)
            return view(request, *args, **kwargs)

        api_operation(view, guarded, action)
        guarded.iam_project_param = project_param  # type: ignore[attr-defined]
        return guarded

    return decorator


def _resource_permission_doc(verb: str) -> str:
    actions = ", ".join(f"`{t.action(verb)}`" for t in catalogue.RESOURCE_TYPES.values())
    return (
        f"**Required permission:** its type's `{verb}` action (on it, in its project): {actions}."
    )


def _api_on_type(
    verb: str,
    project_param: str,
    locate: Callable[[HttpRequest, dict[str, Any]], tuple[str, object, Resource | None]],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The API's resource guards: `locate(request, kwargs)` gives the resource type, the
    project (404 for another organization's) and the resource when there is one, then the
    type's `verb` action is decided there, as `requires_on_resource` and the console's
    per-type lists do."""
    _check_verb(verb)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            resource_type, project_id, resource = locate(request, kwargs)
            decision = decide_on_type(request, resource_type, verb, project_id, resource)
            if not decision.allowed:
                raise api_deny(request, decision)
            return view(request, *args, **kwargs)

        _api_operation(view, guarded, _resource_permission_doc(verb))
        # The action depends on the type: a role matrix decides it from these.
        guarded.iam_action = None  # type: ignore[attr-defined]
        guarded.iam_resource_verb = verb  # type: ignore[attr-defined]
        guarded.iam_project_param = project_param  # type: ignore[attr-defined]
        return guarded

    return decorator


def api_requires_on_resource(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard an operation on the resource of path parameter `resource_id` (set as
    `request.resource`) with its type's `verb` action on it."""

    def locate(request: HttpRequest, kwargs: dict[str, Any]) -> tuple[str, object, Resource]:
        resource = resource_in(request, kwargs["resource_id"])
        return resource.type, resource.project_id, resource

    return _api_on_type(verb, "resource_id", locate)


def api_requires_on_type(
    verb: str, *, project_param: str, input_param: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard an operation on a project's resources of the type its input names
    (`kwargs[input_param].type`: a list's query, a creation's body; ninja validates it
    first) with that type's `verb` action in the project of path parameter
    `project_param`, set as `request.project`."""

    def locate(request: HttpRequest, kwargs: dict[str, Any]) -> tuple[str, object, None]:
        project = project_for(
            organization=request.organization,  # type: ignore[attr-defined]
            project_id=kwargs[project_param],
        )
        request.project = project  # type: ignore[attr-defined]
        return kwargs[input_param].type, project.pk, None

    return _api_on_type(verb, project_param, locate)


def api_any_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """An API operation any live key may call: it reads only the key's own identity."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return view(request, *args, **kwargs)

    _api_operation(view, guarded, "**Required permission:** none (any live API key).")
    guarded.iam_action = None  # type: ignore[attr-defined]
    return guarded
