"""Reading SCIM request bodies into the values the services take: a User for POST and
PUT, the PATCH operations (in Okta's and Entra ID's shapes) applied to current values,
and group changes."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from organizations.models import Membership, Organization
from scim.errors import ScimError, invalid_value
from scim.filters import Path, parse_path
from scim.resources import MAX_MEMBERS, MAX_OPERATIONS
from scim.services import GroupChange, UserValues

# RFC 7643 User attributes (and any extension schema) this server does not keep: accepted
# and left alone, as identity providers send their whole mapping. `emails` mirrors
# userName, the one address an account has.
_IGNORED_USER_ATTRIBUTES = frozenset(
    {
        "emails", "nickname", "profileurl", "title", "usertype", "preferredlanguage",
        "locale", "timezone", "phonenumbers", "ims", "photos", "addresses", "entitlements",
        "roles", "x509certificates", "password", "groups", "schemas", "id", "meta",
    }
)  # fmt: skip
_IGNORED_GROUP_ATTRIBUTES = frozenset({"schemas", "id", "meta"})


def _string(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise invalid_value(f"{name} must be a string (without NUL characters).")
    try:
        value.encode("utf-8")  # JSON's \ud800 escapes decode to lone surrogates
    except UnicodeEncodeError:
        raise invalid_value(f"{name} must be valid Unicode (no lone surrogates).") from None
    return value.strip()


def _boolean(value: Any, name: str) -> bool:
    """Entra ID sends booleans as the strings "True" and "False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value(f"{name} must be true or false.")


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_value(f"{name} must be an object.")
    return value


def user_values(body: dict[str, Any]) -> UserValues:
    """A whole User (POST, PUT): userName is required; unset attributes are cleared."""
    user_name = _string(body.get("userName"), "userName")
    if not user_name:
        raise invalid_value("userName is required.")
    name = _object(body.get("name") or {}, "name")
    return UserValues(
        user_name=user_name,
        external_id=_string(body.get("externalId"), "externalId"),
        given_name=_string(name.get("givenName"), "name.givenName"),
        family_name=_string(name.get("familyName"), "name.familyName"),
        formatted=_string(name.get("formatted"), "name.formatted"),
        display_name=_string(body.get("displayName"), "displayName"),
        active=_boolean(body.get("active", True), "active"),
    )


def operations(body: dict[str, Any]) -> list[tuple[str, Path | None, Any]]:
    """A PatchOp's operations as (op, path or None, value), bounded in number."""
    ops = body.get("Operations")
    if not isinstance(ops, list) or not ops:
        raise invalid_value("A PATCH needs a non-empty Operations list.")
    if len(ops) > MAX_OPERATIONS:
        raise ScimError(413, f"A PATCH has at most {MAX_OPERATIONS} operations.")
    read = []
    for op in ops:
        op = _object(op, "An operation")
        kind = _string(op.get("op"), "op").lower()
        if kind not in ("add", "replace", "remove"):
            raise invalid_value('op must be "add", "replace" or "remove".')
        path = op.get("path")
        if path is not None and not isinstance(path, str):
            raise ScimError(400, "path must be a string.", "invalidPath")
        if path is None and kind == "remove":
            raise ScimError(400, "A remove operation needs a path.", "noTarget")
        read.append((kind, parse_path(path) if path else None, op.get("value")))
    return read


_NAME_PARTS = {"givenname": "given_name", "familyname": "family_name", "formatted": "formatted"}


def _set_user(state: dict[str, Any], path: Path, kind: str, value: Any) -> None:
    remove = kind == "remove"
    attribute, sub = path.attribute, path.sub_attribute
    if attribute == "username":
        if remove:
            raise ScimError(400, "userName is required.", "mutability")
        state["user_name"] = _string(value, "userName")
    elif attribute == "externalid" and not sub:
        state["external_id"] = "" if remove else _string(value, "externalId")
    elif attribute == "displayname" and not sub:
        state["display_name"] = "" if remove else _string(value, "displayName")
    elif attribute == "active" and not sub:
        if remove:
            raise ScimError(400, "active cannot be removed.", "mutability")
        state["active"] = _boolean(value, "active")
    elif attribute == "name" and sub in _NAME_PARTS:
        state[_NAME_PARTS[sub]] = "" if remove else _string(value, f"name.{sub}")
    elif attribute == "name" and not sub:
        parts = {} if remove else _object(value, "name")
        for part, field in _NAME_PARTS.items():
            given = next((v for k, v in parts.items() if k.lower() == part), None)
            if remove or given is not None or kind == "replace":
                state[field] = _string(given, f"name.{part}")
    elif attribute in _IGNORED_USER_ATTRIBUTES or attribute.startswith("urn:"):
        return
    else:
        raise ScimError(400, f"Users have no attribute {attribute!r}.", "invalidPath")


def patched_user(current: UserValues, body: dict[str, Any]) -> UserValues:
    """`current` with a PatchOp's operations applied, in order. Both
    `{"op": "replace", "value": {"active": false}}` (Okta) and
    `{"op": "Replace", "path": "active", "value": "False"}` (Entra ID) work."""
    state = dataclasses.asdict(current)
    for kind, path, value in operations(body):
        if path is not None:
            _set_user(state, path, kind, value)
            continue
        for key, item in _object(value, "value").items():
            _set_user(state, parse_path(key), kind, item)
    if not state["user_name"]:
        raise invalid_value("userName is required.")
    parts = (state["given_name"], state["family_name"])
    if parts != (current.given_name, current.family_name) and (
        state["formatted"] == current.formatted
    ):
        state["formatted"] = ""  # the full name follows its parts unless given too
    return UserValues(**state)


def _member_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    if len(value) > MAX_MEMBERS:
        raise ScimError(413, f"A request names at most {MAX_MEMBERS} members.")
    return [_string(_object(item, "A member").get("value"), "members.value") for item in value]


def members_of(organization: Organization, ids: Iterable[str]) -> list[Membership]:
    """The memberships named, all of the organization; invalidValue for any other id."""
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_MEMBERS:
        raise ScimError(413, f"A request names at most {MAX_MEMBERS} members.")
    wanted = set()
    for raw in ids:
        try:
            wanted.add(uuid.UUID(raw))
        except ValueError:
            raise invalid_value(f"No user has the id {raw[:64]!r}.") from None
    found = list(
        Membership.objects.filter(organization=organization, pk__in=wanted).select_related("user")
    )
    if len(found) != len(wanted):
        missing = sorted(str(pk) for pk in wanted - {m.pk for m in found})
        raise invalid_value(f"No user has the id {missing[0]!r}.")
    return found


def group_put(body: dict[str, Any]) -> tuple[str, str, list[str]]:
    """displayName, externalId and member ids of a whole Group (POST, PUT)."""
    name = _string(body.get("displayName"), "displayName")
    if not name:
        raise invalid_value("displayName is required.")
    return name, _string(body.get("externalId"), "externalId"), _member_ids(body.get("members"))


def group_patch(
    body: dict[str, Any], resolve: Callable[[list[str]], list[Membership]]
) -> GroupChange:
    """A PatchOp on a group as one change: name, external id, members added and removed
    (`members` with a list, or Entra ID's `members[value eq "id"]`), or all replaced."""
    name: str | None = None
    external_id: str | None = None
    add: list[str] = []
    remove: list[str] = []
    replace: list[str] | None = None

    def apply(kind: str, path: Path, value: Any) -> None:
        nonlocal name, external_id, replace
        if path.attribute == "displayname" and not path.sub_attribute:
            if kind == "remove":
                raise ScimError(400, "displayName is required.", "mutability")
            name = _string(value, "displayName")
        elif path.attribute == "externalid" and not path.sub_attribute:
            external_id = "" if kind == "remove" else _string(value, "externalId")
        elif path.attribute == "members" and path.filter:
            targeted = [c.value for c in path.filter if c.attribute == "value"]
            if kind != "remove" or len(path.filter) != 1 or len(targeted) != 1:
                raise ScimError(400, 'Only remove takes members[value eq "id"].', "invalidPath")
            remove.append(_string(targeted[0], "members.value"))
        elif path.attribute == "members" and not path.sub_attribute:
            ids = _member_ids(value)
            if kind == "add":
                add.extend(ids)
            elif kind == "remove" and value is not None:
                remove.extend(ids)
            else:  # replace, or remove without a value: all of them
                replace = ids
                add.clear()
                remove.clear()
        elif path.attribute in _IGNORED_GROUP_ATTRIBUTES:
            return
        else:
            raise ScimError(400, f"Groups have no attribute {path.attribute!r}.", "invalidPath")

    for kind, path, value in operations(body):
        if path is not None:
            apply(kind, path, value)
            continue
        for key, item in _object(value, "value").items():
            apply(kind, parse_path(key), item)
    if len(add) + len(remove) + len(replace or ()) > MAX_MEMBERS:
        raise ScimError(413, f"A request names at most {MAX_MEMBERS} members.")
    return GroupChange(
        name=name,
        external_id=external_id,
        add=resolve(add) if add else (),
        remove=resolve(remove) if remove else (),
        members=resolve(replace) if replace else ([] if replace is not None else None),
    )
