"""Who may call SCIM (a token of that organization only) and the bounds that keep bad
requests to 4xx answers."""

from __future__ import annotations

import json
import uuid

import pytest
from django.http import HttpResponse
from django.test import Client

from organizations.models import Membership
from organizations.services.people import owner_step_down
from scim.models import ScimToken
from scim.resources import MAX_BODY, MAX_MEMBERS, MAX_OPERATIONS
from scim.tokens import CreatedToken, scim_token_create
from tests.conftest import Org
from tests.factories import GroupFactory, MembershipFactory
from tests.scim.conftest import ScimClient, new_user, patch_op

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _assert_unauthorized(response: HttpResponse) -> None:
    assert response.status_code == 401
    assert response.json()["schemas"] == [ERROR]
    assert response.json()["status"] == "401"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer SCIMAAAAAAAAAAAAAAAA.wrong",
        "Bearer " + "x" * 5000,
    ],
)
def test_requests_without_a_valid_token_are_unauthorized(org: Org, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = Client().get(f"/scim/v2/{org.organization.pk}/Users", headers=headers)
    _assert_unauthorized(response)


def test_a_wrong_secret_is_unauthorized(org: Org, created_token: CreatedToken) -> None:
    prefix = created_token.value.split(".")[0]
    forged = ScimClient(org.organization, f"{prefix}.{'A' * 43}")
    _assert_unauthorized(forged.get("Users"))


def test_another_organizations_token_is_unauthorized(org: Org, scim: ScimClient) -> None:
    other = MembershipFactory(is_owner=True)
    theirs = scim_token_create(organization=other.organization, actor=other.user, name="Okta")
    crossing = ScimClient(org.organization, theirs.value)
    _assert_unauthorized(crossing.get("Users"))
    _assert_unauthorized(crossing.post("Users", new_user("evil@example.com")))
    # An unknown organization answers as a wrong token does: nothing tells it exists.
    nowhere = ScimClient(org.organization, theirs.value)
    nowhere.base = f"/scim/v2/{uuid.uuid4()}/"
    _assert_unauthorized(nowhere.get("Users"))
    assert not Membership.objects.filter(user__email="evil@example.com").exists()


def test_a_revoked_token_stops_at_once(org: Org, scim: ScimClient) -> None:
    assert scim.get("Users").status_code == 200
    ScimToken.objects.filter(organization=org.organization).delete()
    _assert_unauthorized(scim.get("Users"))


def test_a_token_stops_when_its_creator_is_no_longer_an_owner(org: Org, scim: ScimClient) -> None:
    second = MembershipFactory(organization=org.organization, is_owner=True)
    assert second.is_owner
    owner_step_down(membership=org.owner)
    _assert_unauthorized(scim.get("Users"))


def test_last_use_is_recorded(org: Org, scim: ScimClient, created_token: CreatedToken) -> None:
    assert created_token.token.last_used_at is None
    scim.get("Users", REMOTE_ADDR="203.0.113.9")
    created_token.token.refresh_from_db()
    assert created_token.token.last_used_at is not None


def test_oversized_bodies_are_413(org: Org, scim: ScimClient) -> None:
    body = new_user("ada@example.com", displayName="x" * (MAX_BODY + 1))
    response = scim.post("Users", body)
    assert response.status_code == 413
    assert response.json()["status"] == "413"


def test_too_many_operations_or_members_are_413(org: Org, scim: ScimClient) -> None:
    user_id = scim.post("Users", new_user("ada@example.com")).json()["id"]
    ops = [{"op": "replace", "path": "displayName", "value": "A"}] * (MAX_OPERATIONS + 1)
    assert scim.patch(f"Users/{user_id}", patch_op(*ops)).status_code == 413
    group = GroupFactory(organization=org.organization)
    members = [{"value": str(uuid.uuid4())} for _ in range(MAX_MEMBERS + 1)]
    response = scim.patch(
        f"Groups/{group.pk}", patch_op({"op": "add", "path": "members", "value": members})
    )
    assert response.status_code == 413


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_unreadable_bodies_are_invalid_syntax(org: Org, scim: ScimClient, raw: bytes) -> None:
    response = scim.client.post(
        scim.base + "Users", data=raw, content_type="application/scim+json", headers=scim.headers
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"userName": 5},
        {"userName": "not-an-email"},
        {"userName": "a@example.com", "active": "sometimes"},
        {"userName": "a@example.com", "name": "Ada"},
        {"userName": "a@example.com", "externalId": "x" * 300},
    ],
)
def test_invalid_users_are_400(org: Org, scim: ScimClient, body: dict) -> None:
    response = scim.post("Users", body)
    assert response.status_code == 400, response.content
    assert response.json()["scimType"] == "invalidValue"


def test_long_filters_and_unsupported_filters_are_400(org: Org, scim: ScimClient) -> None:
    for text in ('userName eq "' + "a" * 2000 + '"', 'title eq "x"', 'userName co "a"'):
        response = scim.get("Users", filter=text)
        assert response.status_code == 400
        assert response.json()["scimType"] == "invalidFilter"


def test_unsupported_methods_are_405(org: Org, scim: ScimClient) -> None:
    response = scim.request("DELETE", "Users")
    assert response.status_code == 405
    assert json.loads(response.content)["status"] == "405"


def test_writes_need_no_csrf_token(org: Org, created_token: CreatedToken) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/scim/v2/{org.organization.pk}/Users",
        data=json.dumps(new_user("ada@example.com")),
        content_type="application/scim+json",
        headers={"Authorization": f"Bearer {created_token.value}"},
    )
    assert response.status_code == 201


def test_junk_no_database_stores_is_refused(org: Org, scim: ScimClient) -> None:
    nul = scim.post("Users", new_user("ada@example.com", externalId="a\x00b"))
    assert nul.status_code == 400
    in_filter = scim.get("Users", filter='externalId eq "a\\u0000b"')
    assert in_filter.status_code == 400
    deep = scim.client.post(
        scim.base + "Users",
        data="[" * 50_000 + "]" * 50_000,
        content_type="application/scim+json",
        headers=scim.headers,
    )
    assert deep.status_code == 400
    far = scim.get("Users", startIndex=str(10**30))
    assert far.status_code == 200
    assert far.json()["Resources"] == []
    long_name = scim.post("Users", new_user("a" * 300 + "@example.com"))
    assert long_name.status_code == 400


def test_lone_surrogates_are_refused(org: Org, scim: ScimClient) -> None:
    # json.dumps writes "\ud800" as the escape an identity provider would send.
    lone = "a\ud800b"
    user = scim.post("Users", new_user("ada@example.com", externalId=lone))
    assert user.status_code == 400 and user.json()["scimType"] == "invalidValue"
    group = scim.post("Groups", {"displayName": lone})
    assert group.status_code == 400 and group.json()["scimType"] == "invalidValue"
    in_filter = scim.get("Users", filter='externalId eq "\\ud800"')
    assert in_filter.status_code == 400 and in_filter.json()["scimType"] == "invalidFilter"
    created = scim.post("Users", new_user("bob@example.com")).json()
    renamed = scim.patch(
        f"Users/{created['id']}", patch_op({"op": "replace", "path": "displayName", "value": lone})
    )
    assert renamed.status_code == 400 and renamed.json()["scimType"] == "invalidValue"
    ops = GroupFactory(organization=org.organization, name="Ops")
    member = patch_op({"op": "remove", "path": 'members[value eq "\\ud800"]'})
    assert scim.patch(f"Groups/{ops.pk}", member).status_code == 400
    assert not Membership.objects.filter(user__email="ada@example.com").exists()
