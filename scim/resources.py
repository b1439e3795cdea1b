"""What SCIM reads: users (memberships) and groups as RFC 7643 resources, list
responses, and the discovery documents (ServiceProviderConfig, ResourceTypes, Schemas)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from organizations.models import Group, Membership

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

MAX_PAGE = 100  # `count` is capped here (RFC 7644 §3.4.2.4 lets the server lower it)
MAX_BODY = 128 * 1024
MAX_OPERATIONS = 100  # PATCH operations per request
MAX_MEMBERS = 1000  # members named in one request


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def user_resource(membership: Membership, base: str) -> dict[str, Any]:
    """A membership as a SCIM User: userName is the account's email, id the membership's.

    Expects `scim` and `groups` loaded (selectors do it once per page)."""
    user = membership.user
    provisioned = getattr(membership, "scim", None)
    given = provisioned.given_name if provisioned else ""
    family = provisioned.family_name if provisioned else ""
    updated = provisioned.updated_at if provisioned else membership.created_at
    resource: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": str(membership.pk),
        "userName": user.email,
        "name": {"formatted": user.full_name, "givenName": given, "familyName": family},
        "displayName": user.full_name or user.email,
        "emails": [{"value": user.email, "type": "work", "primary": True}],
        "active": membership.is_active,
        "groups": [
            {"value": str(group.pk), "display": group.name, "$ref": f"{base}Groups/{group.pk}"}
            for group in membership.groups.all()
        ],
        "meta": {
            "resourceType": "User",
            "created": _timestamp(membership.created_at),
            "lastModified": _timestamp(max(updated, membership.created_at)),
            "location": f"{base}Users/{membership.pk}",
        },
    }
    if provisioned and provisioned.external_id:
        resource["externalId"] = provisioned.external_id
    return resource


def group_resource(
    group: Group, base: str, members: Iterable[Membership] | None = None
) -> dict[str, Any]:
    """A group as a SCIM Group; `members` None leaves them out (list pages: a group may
    hold the whole organization)."""
    provisioned = getattr(group, "scim", None)
    resource: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.pk),
        "displayName": group.name,
        "meta": {
            "resourceType": "Group",
            "created": _timestamp(group.created_at),
            "lastModified": _timestamp(group.updated_at),
            "location": f"{base}Groups/{group.pk}",
        },
    }
    if provisioned and provisioned.external_id:
        resource["externalId"] = provisioned.external_id
    if members is not None:
        resource["members"] = [
            {
                "value": str(membership.pk),
                "display": membership.user.email,
                "$ref": f"{base}Users/{membership.pk}",
                "type": "User",
            }
            for membership in members
        ]
    return resource


def list_response(resources: list[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def service_provider_config(base: str) -> dict[str, Any]:
    """RFC 7643 §5: PATCH and filters yes; bulk, sorting, ETags and password changes no."""
    return {
        "schemas": [CONFIG_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": MAX_BODY},
        "filter": {"supported": True, "maxResults": MAX_PAGE},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token an owner creates in the organization's settings.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}ServiceProviderConfig",
        },
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": name,
            "name": name,
            "endpoint": f"/{name}s",
            "description": description,
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{base}ResourceTypes/{name}"},
        }
        for name, schema, description in (
            ("User", USER_SCHEMA, "A member of the organization."),
            ("Group", GROUP_SCHEMA, "A group of the organization."),
        )
    ]


def _attribute(
    name: str,
    *,
    kind: str = "string",
    required: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    multi: bool = False,
    sub: list[dict[str, Any]] | None = None,
    description: str = "",
) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description,
        "required": required,
        "caseExact": False,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if sub is not None:
        attribute["subAttributes"] = sub
    return attribute


def schemas(base: str) -> list[dict[str, Any]]:
    """The attributes this server keeps, in RFC 7643 §7's shape."""
    user_attributes = [
        _attribute(
            "userName",
            required=True,
            uniqueness="server",
            description="The member's email address: they sign in with it.",
        ),
        _attribute(
            "name",
            kind="complex",
            sub=[_attribute("formatted"), _attribute("givenName"), _attribute("familyName")],
        ),
        _attribute("displayName"),
        _attribute(
            "emails",
            kind="complex",
            multi=True,
            mutability="readOnly",
            sub=[_attribute("value"), _attribute("type"), _attribute("primary", kind="boolean")],
            description="The userName, as the one work address.",
        ),
        _attribute("active", kind="boolean", description="false suspends the membership."),
        _attribute(
            "groups",
            kind="complex",
            multi=True,
            mutability="readOnly",
            sub=[_attribute("value", mutability="readOnly"), _attribute("display")],
        ),
    ]
    group_attributes = [
        _attribute("displayName", required=True, uniqueness="server"),
        _attribute(
            "members",
            kind="complex",
            multi=True,
            returned="request",
            sub=[
                _attribute("value", mutability="immutable"),
                _attribute("display", mutability="readOnly"),
                _attribute("type", mutability="immutable"),
            ],
            description="Listed by a single group's GET, not in list pages.",
        ),
    ]
    return [
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": schema,
            "name": name,
            "description": description,
            "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": f"{base}Schemas/{schema}"},
        }
        for schema, name, description, attributes in (
            (USER_SCHEMA, "User", "User Account", user_attributes),
            (GROUP_SCHEMA, "Group", "Group", group_attributes),
        )
    ]
