"""SCIM Groups: create, add members, remove members by Entra ID's path filter, rename,
replace, delete; the group's policies follow at once."""

from __future__ import annotations

from audit.models import AuditEvent
from organizations.models import Group, Membership
from tests.conftest import Org
from tests.factories import GroupFactory, MembershipFactory
from tests.scim.conftest import ScimClient, new_user, patch_op


def _member(scim: ScimClient, email: str) -> str:
    return scim.post("Users", new_user(email)).json()["id"]


def _version(org: Org) -> int:
    org.organization.refresh_from_db()
    return org.organization.authz_version


def test_entra_group_sequence(org: Org, scim: ScimClient) -> None:
    ada, bob = _member(scim, "ada@example.com"), _member(scim, "bob@example.com")
    assert scim.get("Groups", filter='displayName eq "Finance"').json()["totalResults"] == 0
    created = scim.post(
        "Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "externalId": "8aa1a0c0",
            "displayName": "Finance",
            "members": [],
        },
    )
    assert created.status_code == 201, created.content
    group_id = created.json()["id"]
    assert created.json()["members"] == []
    assert created["Location"].endswith(f"/Groups/{group_id}")

    version = _version(org)
    added = scim.patch(
        f"Groups/{group_id}",
        patch_op({"op": "Add", "path": "members", "value": [{"value": ada}, {"value": bob}]}),
    )
    assert added.status_code == 200, added.content
    assert {m["value"] for m in added.json()["members"]} == {ada, bob}
    assert _version(org) > version

    removed = scim.patch(
        f"Groups/{group_id}", patch_op({"op": "Remove", "path": f'members[value eq "{ada}"]'})
    )
    assert removed.status_code == 200, removed.content
    assert [m["value"] for m in removed.json()["members"]] == [bob]
    group = Group.objects.get(pk=group_id)
    assert list(group.members.values_list("pk", flat=True)) == [Membership.objects.get(pk=bob).pk]

    events = AuditEvent.objects.filter(target_id=group_id).order_by("id")
    assert [e.action for e in events] == [
        "iam.group.created",
        "iam.group.member_added",
        "iam.group.member_added",
        "iam.group.member_removed",
    ]
    assert all(e.actor_label.startswith("SCIM token Okta") for e in events)

    assert (
        scim.get(f"Groups/{group_id}", excludedAttributes="members").json().get("members") is None
    )
    assert scim.get("Groups", filter='displayName eq "finance"').json()["totalResults"] == 1


def test_okta_group_sequence(org: Org, scim: ScimClient) -> None:
    ada = _member(scim, "ada@example.com")
    created = scim.post(
        "Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "members": [{"value": ada, "display": "ada@example.com"}],
        },
    )
    assert created.status_code == 201, created.content
    group_id = created.json()["id"]
    renamed = scim.patch(
        f"Groups/{group_id}",
        patch_op({"op": "replace", "value": {"id": group_id, "displayName": "Platform"}}),
    )
    assert renamed.json()["displayName"] == "Platform"
    removed = scim.patch(
        f"Groups/{group_id}",
        patch_op({"op": "remove", "path": "members", "value": [{"value": ada}]}),
    )
    assert removed.json()["members"] == []
    replaced = scim.put(
        f"Groups/{group_id}",
        {"displayName": "Platform", "members": [{"value": ada}], "externalId": "00g1"},
    )
    assert replaced.status_code == 200
    assert [m["value"] for m in replaced.json()["members"]] == [ada]
    assert replaced.json()["externalId"] == "00g1"
    assert AuditEvent.objects.filter(
        action="iam.group.updated", target_id=group_id, data__after__external_id="00g1"
    ).exists()
    assert scim.delete(f"Groups/{group_id}").status_code == 204
    assert not Group.objects.filter(pk=group_id).exists()
    assert AuditEvent.objects.filter(action="iam.group.deleted", target_id=group_id).exists()


def test_group_names_are_unique(org: Org, scim: ScimClient) -> None:
    GroupFactory(organization=org.organization, name="Finance")
    conflict = scim.post("Groups", {"displayName": "FINANCE"})
    assert conflict.status_code == 409
    assert conflict.json()["scimType"] == "uniqueness"
    too_long = scim.post("Groups", {"displayName": "x" * 65})
    assert too_long.status_code == 400
    assert too_long.json()["scimType"] == "invalidValue"


def test_members_must_be_users_of_the_organization(org: Org, scim: ScimClient) -> None:
    group = GroupFactory(organization=org.organization)
    stranger = MembershipFactory()
    for value in (str(stranger.pk), "not-a-uuid"):
        refused = scim.patch(
            f"Groups/{group.pk}",
            patch_op({"op": "add", "path": "members", "value": [{"value": value}]}),
        )
        assert refused.status_code == 400
        assert refused.json()["scimType"] == "invalidValue"
    assert not group.members.exists()


def test_owners_are_never_put_in_or_taken_out_of_groups(org: Org, scim: ScimClient) -> None:
    group = GroupFactory(organization=org.organization)
    refused = scim.patch(
        f"Groups/{group.pk}",
        patch_op({"op": "add", "path": "members", "value": [{"value": str(org.owner.pk)}]}),
    )
    assert refused.status_code == 403
    assert refused.json()["scimType"] == "mutability"
    assert not group.members.exists()


def test_groups_of_another_organization_are_not_found(org: Org, scim: ScimClient) -> None:
    other = GroupFactory()
    assert scim.get(f"Groups/{other.pk}").status_code == 404
    assert scim.delete(f"Groups/{other.pk}").status_code == 404
    assert scim.get("Groups", filter=f'displayName eq "{other.name}"').json()["totalResults"] == 0
    assert Group.objects.filter(pk=other.pk).exists()


def test_bad_group_patches_are_refused(org: Org, scim: ScimClient) -> None:
    group = GroupFactory(organization=org.organization)
    cases = [
        (patch_op({"op": "add", "path": 'members[value eq "x"]', "value": []}), "invalidPath"),
        (patch_op({"op": "replace", "path": "owners", "value": 1}), "invalidPath"),
        (patch_op({"op": "remove", "path": "displayName"}), "mutability"),
        (patch_op({"op": "add", "path": "members", "value": "nope"}), "invalidValue"),
    ]
    for body, scim_type in cases:
        response = scim.patch(f"Groups/{group.pk}", body)
        assert response.status_code == 400, body
        assert response.json()["scimType"] == scim_type, body
