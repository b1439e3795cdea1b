"""ServiceProviderConfig, ResourceTypes and Schemas against RFC 7643's examples (§8.5,
§8.6, §8.7.1): the same keys and types, with this server's values."""

from __future__ import annotations

from tests.conftest import Org
from tests.scim.conftest import ScimClient

# RFC 7643 §8.5, keys and value types (documentationUri included, as in the example).
RFC_SERVICE_PROVIDER_CONFIG = {
    "schemas": list,
    "documentationUri": str,
    "patch": {"supported": bool},
    "bulk": {"supported": bool, "maxOperations": int, "maxPayloadSize": int},
    "filter": {"supported": bool, "maxResults": int},
    "changePassword": {"supported": bool},
    "sort": {"supported": bool},
    "etag": {"supported": bool},
    "authenticationSchemes": list,
    "meta": {"resourceType": str, "location": str},
}


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value)


def test_service_provider_config_has_the_rfc_shape(org: Org, scim: ScimClient) -> None:
    response = scim.get("ServiceProviderConfig")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/scim+json"
    body = response.json()
    assert _shape(body) == RFC_SERVICE_PROVIDER_CONFIG
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert body["patch"]["supported"] is True
    assert body["filter"] == {"supported": True, "maxResults": 100}
    scheme = body["authenticationSchemes"][0]
    assert {"type", "name", "description"} <= set(scheme)
    assert scheme["type"] == "oauthbearertoken"


def test_resource_types_follow_the_rfc_example(org: Org, scim: ScimClient) -> None:
    body = scim.get("ResourceTypes").json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 2
    user = body["Resources"][0]
    # RFC 7643 §8.6, the User resource type (schemaExtensions left out: none here).
    assert {key: user[key] for key in ("id", "name", "endpoint", "schema")} == {
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
    }
    assert user["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"]
    assert user["meta"] == {
        "resourceType": "ResourceType",
        "location": f"http://testserver/scim/v2/{org.organization.pk}/ResourceTypes/User",
    }
    assert scim.get("ResourceTypes/Group").json()["endpoint"] == "/Groups"
    assert scim.get("ResourceTypes/Printer").status_code == 404


ATTRIBUTE_KEYS = {
    "name",
    "type",
    "multiValued",
    "description",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
}


def test_schemas_describe_attributes_as_rfc_7643_does(org: Org, scim: ScimClient) -> None:
    body = scim.get("Schemas").json()
    assert [s["id"] for s in body["Resources"]] == [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    ]
    user = scim.get("Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    assert user["name"] == "User"
    assert user["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    by_name = {attribute["name"]: attribute for attribute in user["attributes"]}
    for attribute in user["attributes"]:
        assert set(attribute) >= ATTRIBUTE_KEYS
    # As RFC 7643 §8.7.1 describes userName.
    assert {key: by_name["userName"][key] for key in ATTRIBUTE_KEYS - {"description"}} == {
        "name": "userName",
        "type": "string",
        "multiValued": False,
        "required": True,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "server",
    }
    assert [sub["name"] for sub in by_name["name"]["subAttributes"]] == [
        "formatted",
        "givenName",
        "familyName",
    ]
    assert by_name["active"]["type"] == "boolean"
    group = scim.get("Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").json()
    assert {a["name"] for a in group["attributes"]} == {"displayName", "members"}
    assert scim.get("Schemas/urn:example:nothing").status_code == 404
