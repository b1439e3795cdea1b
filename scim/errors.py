"""SCIM errors (RFC 7644 §3.12): raised anywhere below a SCIM view, answered as the
error schema with the status as a string."""

from __future__ import annotations

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A refusal to answer as `{"schemas": [Error], "status": "400", "scimType": ...}`."""

    def __init__(self, status: int, detail: str, scim_type: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, str | list[str]]:
        body: dict[str, str | list[str]] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def not_found(what: str) -> ScimError:
    return ScimError(404, f"No such {what}.")
