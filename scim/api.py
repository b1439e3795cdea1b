"""The SCIM 2.0 endpoints under `/scim/v2/<org_id>/` (RFC 7644): discovery, Users and
Groups. Authenticated by a SCIM token of that organization only; CSRF-exempt (no
cookies); every refusal is a SCIM error, never a page."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from accounts.emails import canonical_email_or_none
from iamportal.request import client_ip
from organizations.models import Group, Membership, Organization
from policies.delegation import DelegationRefused
from policies.guards import public
from scim import parsing, resources
from scim.errors import ScimError, invalid_value, not_found
from scim.filters import Comparison, parse_filter
from scim.models import ScimToken
from scim.services import (
    GroupChange,
    current_values,
    scim_group_create,
    scim_group_delete,
    scim_group_update,
    scim_user_create,
    scim_user_delete,
    scim_user_update,
)
from scim.tokens import scim_token_authenticate

CONTENT_TYPE = "application/scim+json"
Handler = Callable[..., HttpResponse]


def _json(data: Any, status: int = 200, location: str = "") -> JsonResponse:
    response = JsonResponse(data, status=status, content_type=CONTENT_TYPE, safe=False)
    if location:
        response["Location"] = location
    return response


def _error(error: ScimError) -> JsonResponse:
    response = _json(error.body(), status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="SCIM"'
    return response


def _authenticate(request: HttpRequest, org_id: object) -> ScimToken:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    token = None
    if scheme.lower() == "bearer" and len(value) < 200:
        token = scim_token_authenticate(organization_id=org_id, bearer=value, ip=client_ip(request))
    if token is None:
        raise ScimError(401, "A valid SCIM token of this organization is required.")
    return token


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > resources.MAX_BODY:
        raise ScimError(413, f"A request body is at most {resources.MAX_BODY // 1024} KiB.")
    raw = request.body
    if len(raw) > resources.MAX_BODY:
        raise ScimError(413, f"A request body is at most {resources.MAX_BODY // 1024} KiB.")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ScimError(400, "The body is not JSON.", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    return body


def endpoint(*request_method_list: str) -> Callable[[Handler], Handler]:
    """A SCIM endpoint: these methods only, the token checked before anything else, the
    body read (bounded) for writes, refusals answered in the SCIM error schema.

    The methods are named as in Django's `require_http_methods`, whose closure tooling
    reads to tell reads from writes (tests/audit/urlconf.py)."""

    def decorator(view: Handler) -> Handler:
        @wraps(view)
        def wrapped(request: HttpRequest, org_id: uuid.UUID, **kwargs: Any) -> HttpResponse:
            try:
                token = _authenticate(request, org_id)
                if request.method not in request_method_list:
                    raise ScimError(405, f"{request.method} is not supported here.")
                if request.method in ("POST", "PUT", "PATCH"):
                    kwargs["body"] = _body(request)
                return view(request, token, **kwargs)
            except ScimError as error:
                return _error(error)
            except DelegationRefused as refused:
                return _error(ScimError(403, refused.messages[0]))
            except ValidationError as error:
                return _error(invalid_value(" ".join(error.messages)))

        return public(csrf_exempt(wrapped))

    return decorator


def _base(request: HttpRequest, token: ScimToken) -> str:
    url = reverse("scim:service_provider_config", kwargs={"org_id": token.organization_id})
    return request.build_absolute_uri(url.removesuffix("ServiceProviderConfig"))


def _paging(request: HttpRequest) -> tuple[int, int]:
    """1-based startIndex and count (capped at MAX_PAGE), as RFC 7644 §3.4.2.4 reads them."""
    try:
        start = int(request.GET.get("startIndex", "1"))
        count = int(request.GET.get("count", str(resources.MAX_PAGE)))
    except ValueError:
        raise invalid_value("startIndex and count are integers.") from None
    # Bounded: a database refuses offsets beyond 64 bits.
    return min(max(start, 1), 2**31), min(max(count, 0), resources.MAX_PAGE)


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- discovery


@endpoint("GET")
def service_provider_config(request: HttpRequest, token: ScimToken) -> HttpResponse:
    return _json(resources.service_provider_config(_base(request, token)))


@endpoint("GET")
def resource_types(request: HttpRequest, token: ScimToken) -> HttpResponse:
    found = resources.resource_types(_base(request, token))
    return _json(resources.list_response(found, len(found), 1))


@endpoint("GET")
def resource_type(request: HttpRequest, token: ScimToken, name: str) -> HttpResponse:
    for found in resources.resource_types(_base(request, token)):
        if found["id"] == name:
            return _json(found)
    raise not_found("resource type")


@endpoint("GET")
def schemas(request: HttpRequest, token: ScimToken) -> HttpResponse:
    found = resources.schemas(_base(request, token))
    return _json(resources.list_response(found, len(found), 1))


@endpoint("GET")
def schema(request: HttpRequest, token: ScimToken, schema_id: str) -> HttpResponse:
    for found in resources.schemas(_base(request, token)):
        if found["id"] == schema_id:
            return _json(found)
    raise not_found("schema")


# --- users


def _users(organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user", "scim")
        .prefetch_related("groups")
        .order_by("created_at", "pk")
    )


def _user_or_404(token: ScimToken, user_id: str) -> Membership:
    membership_pk = _uuid_or_none(user_id)
    found = _users(token.organization).filter(pk=membership_pk).first() if membership_pk else None
    if found is None:
        raise not_found("user")
    return found


def _string_value(comparison: Comparison) -> str:
    if not isinstance(comparison.value, str):
        raise ScimError(400, f"{comparison.attribute} compares with a string.", "invalidFilter")
    return comparison.value


def _filter_users(queryset: QuerySet[Membership], comparison: Comparison) -> QuerySet[Membership]:
    attribute = comparison.attribute
    if attribute in ("username", "emails", "emails.value"):
        # userName is case-insensitive (RFC 7643 §4.1.1): addresses are stored canonical.
        email = canonical_email_or_none(_string_value(comparison))
        return queryset.filter(user__email=email) if email else queryset.none()
    if attribute == "externalid":
        return queryset.filter(scim__external_id=_string_value(comparison))
    if attribute == "id":
        return queryset.filter(pk=_uuid_or_none(_string_value(comparison)))
    if attribute == "active":
        if not isinstance(comparison.value, bool):
            raise ScimError(400, "active compares with true or false.", "invalidFilter")
        status = Membership.Status.ACTIVE if comparison.value else Membership.Status.SUSPENDED
        return queryset.filter(status=status)
    raise ScimError(400, f"Users cannot be filtered on {attribute!r}.", "invalidFilter")


def _user_response(
    request: HttpRequest, token: ScimToken, membership: Membership, status: int = 200
) -> HttpResponse:
    membership = _user_or_404(token, str(membership.pk))
    resource = resources.user_resource(membership, _base(request, token))
    return _json(resource, status, resource["meta"]["location"] if status == 201 else "")


@endpoint("GET", "POST")
def users(request: HttpRequest, token: ScimToken, body: Any = None) -> HttpResponse:
    if request.method == "POST":
        values = parsing.user_values(body)
        membership = scim_user_create(token=token, values=values, request=request)
        return _user_response(request, token, membership, status=201)
    queryset = _users(token.organization)
    for comparison in parse_filter(request.GET["filter"]) if "filter" in request.GET else ():
        queryset = _filter_users(queryset, comparison)
    start, count = _paging(request)
    page = list(queryset[start - 1 : start - 1 + count]) if count else []
    base = _base(request, token)
    found = [resources.user_resource(membership, base) for membership in page]
    return _json(resources.list_response(found, queryset.count(), start))


@endpoint("GET", "PUT", "PATCH", "DELETE")
def user(request: HttpRequest, token: ScimToken, user_id: str, body: Any = None) -> HttpResponse:
    membership = _user_or_404(token, user_id)
    if request.method == "GET":
        return _json(resources.user_resource(membership, _base(request, token)))
    if request.method == "DELETE":
        scim_user_delete(token=token, membership=membership, request=request)
        return HttpResponse(status=204)
    if request.method == "PUT":
        values = parsing.user_values(body)
    else:
        values = parsing.patched_user(current_values(membership), body)
    scim_user_update(token=token, membership=membership, values=values, request=request)
    return _user_response(request, token, membership)


# --- groups


def _groups(organization: Organization) -> QuerySet[Group]:
    return (
        Group.objects.filter(organization=organization)
        .select_related("scim")
        .order_by("created_at", "pk")
    )


def _group_or_404(token: ScimToken, group_id: str) -> Group:
    group_pk = _uuid_or_none(group_id)
    found = _groups(token.organization).filter(pk=group_pk).first() if group_pk else None
    if found is None:
        raise not_found("group")
    return found


def _filter_groups(queryset: QuerySet[Group], comparison: Comparison) -> QuerySet[Group]:
    attribute = comparison.attribute
    if attribute == "displayname":
        return queryset.filter(name__iexact=_string_value(comparison))
    if attribute == "externalid":
        return queryset.filter(scim__external_id=_string_value(comparison))
    if attribute == "id":
        return queryset.filter(pk=_uuid_or_none(_string_value(comparison)))
    raise ScimError(400, f"Groups cannot be filtered on {attribute!r}.", "invalidFilter")


def _excludes_members(request: HttpRequest) -> bool:
    excluded = request.GET.get("excludedAttributes", "")[:200].lower()
    return "members" in {name.strip() for name in excluded.split(",")}


def _group_response(
    request: HttpRequest, token: ScimToken, group: Group, status: int = 200
) -> HttpResponse:
    group = _group_or_404(token, str(group.pk))
    members = None
    if not _excludes_members(request):
        members = group.members.select_related("user").order_by("created_at", "pk")
    resource = resources.group_resource(group, _base(request, token), members)
    return _json(resource, status, resource["meta"]["location"] if status == 201 else "")


@endpoint("GET", "POST")
def groups(request: HttpRequest, token: ScimToken, body: Any = None) -> HttpResponse:
    if request.method == "POST":
        name, external_id, ids = parsing.group_put(body)
        group = scim_group_create(
            token=token,
            name=name,
            external_id=external_id,
            members=parsing.members_of(token.organization, ids),
            request=request,
        )
        return _group_response(request, token, group, status=201)
    queryset = _groups(token.organization)
    for comparison in parse_filter(request.GET["filter"]) if "filter" in request.GET else ():
        queryset = _filter_groups(queryset, comparison)
    start, count = _paging(request)
    page = list(queryset[start - 1 : start - 1 + count]) if count else []
    base = _base(request, token)
    # Members are left out of lists: one group may hold the whole organization.
    found = [resources.group_resource(group, base) for group in page]
    return _json(resources.list_response(found, queryset.count(), start))


@endpoint("GET", "PUT", "PATCH", "DELETE")
def group(request: HttpRequest, token: ScimToken, group_id: str, body: Any = None) -> HttpResponse:
    found = _group_or_404(token, group_id)
    if request.method == "GET":
        return _group_response(request, token, found)
    if request.method == "DELETE":
        scim_group_delete(token=token, group=found, request=request)
        return HttpResponse(status=204)
    if request.method == "PUT":
        name, external_id, ids = parsing.group_put(body)
        members = parsing.members_of(token.organization, ids)
        change = GroupChange(name=name, external_id=external_id, members=members)
    else:
        change = parsing.group_patch(body, lambda ids: parsing.members_of(token.organization, ids))
    scim_group_update(token=token, group=found, change=change, request=request)
    return _group_response(request, token, found)
