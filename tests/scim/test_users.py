"""SCIM Users: the request sequences Okta and Entra ID send, owner protection, and
deactivation signing the member out at once."""

from __future__ import annotations

from urllib.parse import quote

from django.test import Client

from accounts.models import User, UserSession
from audit.models import AuditEvent
from organizations.models import Membership
from scim.tokens import CreatedToken
from tests.conftest import Org
from tests.factories import MembershipFactory
from tests.scim.conftest import ScimClient, new_user, patch_op

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _version(org: Org) -> int:
    org.organization.refresh_from_db()
    return org.organization.authz_version


def test_okta_sequence_creates_deactivates_and_replaces(
    org: Org, scim: ScimClient, created_token: CreatedToken
) -> None:
    # Okta looks the user up first, by userName, with paging.
    found = scim.get("Users", filter='userName eq "ada@example.com"', startIndex="1", count="100")
    assert found.status_code == 200
    assert found["Content-Type"] == "application/scim+json"
    assert found.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }

    version = _version(org)
    created = scim.post("Users", new_user("Ada@Example.com"))
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["userName"] == "ada@example.com"
    assert body["active"] is True
    assert body["externalId"] == "00u1abcd"
    assert body["name"]["givenName"] == "Ada"
    assert created["Location"] == body["meta"]["location"]
    membership = Membership.objects.get(pk=body["id"])
    assert membership.organization == org.organization
    assert membership.user.managed_by == org.organization
    assert not membership.user.has_usable_password()
    assert membership.kind == "member"
    assert _version(org) > version

    # The filter is case-insensitive (userName is caseExact false).
    again = scim.get("Users", filter='userName eq "ADA@example.COM"')
    assert again.json()["totalResults"] == 1
    assert again.json()["Resources"][0]["id"] == body["id"]

    deactivated = scim.patch(
        f"Users/{body['id']}", patch_op({"op": "replace", "value": {"active": False}})
    )
    assert deactivated.status_code == 200, deactivated.content
    assert deactivated.json()["active"] is False
    membership.refresh_from_db()
    assert membership.status == Membership.Status.SUSPENDED

    replaced = scim.put(
        f"Users/{body['id']}",
        new_user("ada@example.com", name={"givenName": "Ada", "familyName": "King"}),
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["active"] is True
    assert replaced.json()["name"]["familyName"] == "King"
    membership.refresh_from_db()
    assert membership.status == Membership.Status.ACTIVE

    actions = list(
        AuditEvent.objects.filter(organization=org.organization, target_id=body["id"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "iam.user.created",
        "iam.user.suspended",
        "iam.user.updated",
        "iam.user.reactivated",
    ]
    token = created_token.token
    events = AuditEvent.objects.filter(organization=org.organization, target_id=body["id"])
    for event in events:  # the token acted, vouched for by the owner who created it
        assert event.actor_type == "scim_token" and event.actor_id == str(token.pk)
        assert event.actor_label == f"SCIM token Okta ({token.prefix})"
        assert event.actor_user == org.owner.user
    suspended = events.get(action="iam.user.suspended")
    assert "identity provider" in suspended.data["reason"]


def test_entra_sequence_creates_disables_and_deletes(org: Org, scim: ScimClient) -> None:
    email = "grace@example.com"
    found = scim.get("Users", filter=f'userName eq "{email}"')
    assert found.json()["totalResults"] == 0
    created = scim.post(
        "Users",
        {
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ],
            "externalId": "grace",
            "userName": email,
            "active": True,
            "displayName": "Grace Hopper",
            "emails": [{"primary": True, "type": "work", "value": email}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
            "roles": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
        },
    )
    assert created.status_code == 201, created.content
    user_id = created.json()["id"]
    assert User.objects.get(email=email).full_name == "Grace Hopper"

    updated = scim.patch(
        f"Users/{user_id}",
        patch_op(
            {"op": "Replace", "path": "name.givenName", "value": "Amazing Grace"},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": email},
            {"op": "Add", "path": "externalId", "value": "grace-2"},
            {
                "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "Research",
            },
        ),
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["name"]["givenName"] == "Amazing Grace"
    assert updated.json()["displayName"] == "Amazing Grace Hopper"
    assert updated.json()["externalId"] == "grace-2"
    assert scim.get("Users", filter='externalId eq "grace-2"').json()["totalResults"] == 1

    disabled = scim.patch(
        f"Users/{user_id}", patch_op({"op": "Replace", "path": "active", "value": "False"})
    )
    assert disabled.status_code == 200, disabled.content
    assert disabled.json()["active"] is False

    version = _version(org)
    deleted = scim.delete(f"Users/{user_id}")
    assert deleted.status_code == 204
    assert not Membership.objects.filter(pk=user_id).exists()
    assert not User.objects.filter(email=email).exists()  # a member account goes with it
    assert _version(org) > version
    assert scim.get(f"Users/{user_id}").status_code == 404
    assert AuditEvent.objects.filter(action="iam.user.removed", target_label=email).exists()


def test_deactivation_signs_the_member_out_at_once(org: Org, scim: ScimClient) -> None:
    user_id = scim.post("Users", new_user("sam@example.com")).json()["id"]
    user = User.objects.get(email="sam@example.com")
    browser = Client()
    browser.force_login(user)
    home = "/accounts/"  # the account page: any signed-in account opens it
    assert browser.get(home).status_code == 200
    assert UserSession.objects.filter(user=user).exists()

    scim.patch(f"Users/{user_id}", patch_op({"op": "replace", "value": {"active": False}}))

    refused = browser.get(home)
    assert refused.status_code == 302
    assert refused["Location"].startswith("/accounts/login/")
    assert not UserSession.objects.filter(user=user).exists()


def test_a_guest_is_suspended_but_keeps_their_account(org: Org, scim: ScimClient) -> None:
    guest = MembershipFactory(organization=org.organization)
    other = MembershipFactory(user=guest.user)  # the guest's own organization
    assert guest.kind == "guest"
    found = scim.get("Users", filter=f'userName eq "{guest.user.email}"').json()
    assert found["Resources"][0]["id"] == str(guest.pk)

    scim.patch(f"Users/{guest.pk}", patch_op({"op": "replace", "path": "active", "value": False}))
    guest.refresh_from_db()
    assert guest.status == Membership.Status.SUSPENDED
    renamed = scim.patch(
        f"Users/{guest.pk}",
        patch_op({"op": "replace", "path": "userName", "value": "new@example.com"}),
    )
    assert renamed.status_code == 400
    assert renamed.json()["scimType"] == "mutability"

    assert scim.delete(f"Users/{guest.pk}").status_code == 204
    assert User.objects.filter(pk=guest.user.pk).exists()
    assert Membership.objects.filter(pk=other.pk).exists()


def test_owners_are_never_changed(org: Org, scim: ScimClient) -> None:
    owner = org.owner
    for response in (
        scim.patch(f"Users/{owner.pk}", patch_op({"op": "replace", "value": {"active": False}})),
        scim.put(f"Users/{owner.pk}", new_user(owner.user.email)),
        scim.delete(f"Users/{owner.pk}"),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["schemas"] == [ERROR]
        assert response.json()["status"] == "403"
        assert response.json()["scimType"] == "mutability"
    owner.refresh_from_db()
    assert owner.is_active and owner.is_owner


def test_creating_an_existing_account_is_a_uniqueness_conflict(org: Org, scim: ScimClient) -> None:
    for email in (org.tech.user.email, org.outsider.email.upper()):
        conflict = scim.post("Users", new_user(email))
        assert conflict.status_code == 409
        assert conflict.json() == {
            "schemas": [ERROR],
            "status": "409",
            "scimType": "uniqueness",
            "detail": conflict.json()["detail"],
        }


def test_invitation_domains_limit_new_users(org: Org, scim: ScimClient) -> None:
    org.organization.invitation_domains = ["acme.test"]
    org.organization.save()
    refused = scim.post("Users", new_user("ada@example.com"))
    assert refused.status_code == 400
    assert refused.json()["scimType"] == "invalidValue"
    assert scim.post("Users", new_user("ada@acme.test")).status_code == 201


def test_renaming_a_member_account_changes_its_email(org: Org, scim: ScimClient) -> None:
    user_id = scim.post("Users", new_user("old@example.com")).json()["id"]
    renamed = scim.patch(
        f"Users/{user_id}",
        patch_op({"op": "replace", "path": "userName", "value": "New@Example.com"}),
    )
    assert renamed.status_code == 200
    assert renamed.json()["userName"] == "new@example.com"
    taken = scim.patch(
        f"Users/{user_id}",
        patch_op({"op": "replace", "path": "userName", "value": org.tech.user.email}),
    )
    assert taken.status_code == 409


def test_users_page_with_start_index_and_count(org: Org, scim: ScimClient) -> None:
    for _ in range(3):
        MembershipFactory(organization=org.organization)
    everyone = Membership.objects.filter(organization=org.organization).count()
    page = scim.get("Users", startIndex="2", count="2").json()
    assert page["totalResults"] == everyone
    assert (page["startIndex"], page["itemsPerPage"]) == (2, 2)
    capped = scim.get("Users", count="5000").json()
    assert capped["itemsPerPage"] == min(everyone, 100)
    assert scim.get("Users", count="0").json()["Resources"] == []
    bad = scim.get("Users", count="many")
    assert bad.status_code == 400
    assert bad.json()["scimType"] == "invalidValue"


def test_the_user_resource_has_rfc_7643_shape(org: Org, scim: ScimClient) -> None:
    body = scim.post("Users", new_user("ada@example.com")).json()
    assert set(body) == {
        "schemas",
        "id",
        "externalId",
        "userName",
        "name",
        "displayName",
        "emails",
        "active",
        "groups",
        "meta",
    }
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
    assert body["emails"] == [{"value": "ada@example.com", "type": "work", "primary": True}]
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"] == (
        f"http://testserver/scim/v2/{org.organization.pk}/Users/{body['id']}"
    )
    assert body["meta"]["created"].endswith("Z")
    fetched = scim.get(f"Users/{body['id']}").json()
    assert fetched == body


def test_patch_refuses_unknown_attributes_and_bad_values(org: Org, scim: ScimClient) -> None:
    user_id = scim.post("Users", new_user("ada@example.com")).json()["id"]
    cases = [
        (patch_op({"op": "replace", "path": "shoeSize", "value": 42}), "invalidPath"),
        (patch_op({"op": "replace", "path": "active", "value": "maybe"}), "invalidValue"),
        (patch_op({"op": "remove", "path": "userName"}), "mutability"),
        (patch_op({"op": "remove"}), "noTarget"),
        (patch_op({"op": "move", "path": "active"}), "invalidValue"),
        ({"Operations": []}, "invalidValue"),
        (patch_op({"op": "replace", "path": "name.givenName", "value": 7}), "invalidValue"),
    ]
    for body, scim_type in cases:
        response = scim.patch(f"Users/{user_id}", body)
        assert response.status_code == 400, body
        assert response.json()["scimType"] == scim_type, body
    assert Membership.objects.get(pk=user_id).is_active


def test_users_of_another_organization_are_not_found(
    org: Org, scim: ScimClient, created_token: CreatedToken
) -> None:
    stranger = MembershipFactory()
    assert scim.get(f"Users/{stranger.pk}").status_code == 404
    assert scim.get(f"Users/{quote('not-a-uuid')}").status_code == 404
    patched = scim.patch(
        f"Users/{stranger.pk}", patch_op({"op": "replace", "value": {"active": False}})
    )
    assert patched.status_code == 404
    assert patched.json()["schemas"] == [ERROR]
    found = scim.get("Users", filter=f'userName eq "{stranger.user.email}"').json()
    assert found["totalResults"] == 0
    stranger.refresh_from_db()
    assert stranger.is_active
