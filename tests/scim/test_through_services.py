"""SCIM writes go through the organization's services: the token is the actor, a
provisioned account gets no password email, one version bump per batch of members."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from organizations.models import Membership
from organizations.services.groups import group_change_members
from scim.tokens import CreatedToken
from tests.conftest import Org
from tests.factories import GroupFactory, MembershipFactory
from tests.scim.conftest import ScimClient, new_user, patch_op


def _version(org: Org) -> int:
    org.organization.refresh_from_db()
    return org.organization.authz_version


def _by_token(created_token: CreatedToken, **filters: object) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            actor_type="scim_token", actor_id=str(created_token.token.pk), **filters
        ).order_by("id")
    )


def test_a_provisioned_account_gets_no_password_email(
    org: Org, scim: ScimClient, created_token: CreatedToken
) -> None:
    created = scim.post("Users", new_user("ada@example.com"))
    assert created.status_code == 201, created.content
    membership = Membership.objects.select_related("user").get(pk=created.json()["id"])
    assert not membership.user.has_usable_password()
    assert mail.outbox == []  # it signs in through the identity provider
    [event] = _by_token(created_token, action="iam.user.created")
    assert event.target_label == "ada@example.com"


def test_a_user_created_inactive_is_suspended_at_once(
    org: Org, scim: ScimClient, created_token: CreatedToken
) -> None:
    created = scim.post("Users", new_user("ada@example.com", active=False))
    assert created.status_code == 201, created.content
    assert created.json()["active"] is False
    user_id = created.json()["id"]
    assert Membership.objects.get(pk=user_id).status == Membership.Status.SUSPENDED
    actions = [e.action for e in _by_token(created_token, target_id=user_id)]
    assert actions == ["iam.user.created", "iam.user.suspended"]


def test_a_batch_of_members_is_one_version_bump_and_one_event_each(
    org: Org, scim: ScimClient, created_token: CreatedToken
) -> None:
    group = GroupFactory(organization=org.organization)
    people = [MembershipFactory(organization=org.organization) for _ in range(3)]
    version = _version(org)
    added = scim.patch(
        f"Groups/{group.pk}",
        patch_op({"op": "add", "path": "members", "value": [{"value": str(m.pk)} for m in people]}),
    )
    assert added.status_code == 200, added.content
    assert _version(org) == version + 1
    events = _by_token(created_token, target_id=str(group.pk))
    assert sorted(e.data["user"] for e in events) == sorted(m.user.email for m in people)
    assert {e.action for e in events} == {"iam.group.member_added"}

    again = scim.patch(
        f"Groups/{group.pk}",
        patch_op({"op": "add", "path": "members", "value": [{"value": str(people[0].pk)}]}),
    )
    assert again.status_code == 200
    assert _version(org) == version + 1  # already a member: nothing changed


def test_a_full_member_list_may_name_an_owner_already_in_the_group(
    org: Org, scim: ScimClient
) -> None:
    group = GroupFactory(organization=org.organization, name="Admins")
    group.members.add(org.owner, org.tech)
    kept = scim.put(
        f"Groups/{group.pk}", {"displayName": "Admins", "members": [{"value": str(org.owner.pk)}]}
    )
    assert kept.status_code == 200, kept.content
    assert set(group.members.all()) == {org.owner}

    dropped = scim.put(f"Groups/{group.pk}", {"displayName": "Admins", "members": []})
    assert dropped.status_code == 403
    assert dropped.json()["scimType"] == "mutability"
    assert set(group.members.all()) == {org.owner}


def test_a_member_account_keeps_to_the_invitation_domains(org: Org, scim: ScimClient) -> None:
    org.organization.invitation_domains = ["acme.test"]
    org.organization.save()
    user_id = scim.post("Users", new_user("ada@acme.test")).json()["id"]
    moved = scim.patch(
        f"Users/{user_id}",
        patch_op({"op": "replace", "path": "userName", "value": "ada@example.com"}),
    )
    assert moved.status_code == 400
    assert moved.json()["scimType"] == "invalidValue"
    assert Membership.objects.get(pk=user_id).user.email == "ada@acme.test"


def test_renaming_and_deleting_a_group_is_the_tokens(
    org: Org, scim: ScimClient, created_token: CreatedToken
) -> None:
    group = GroupFactory(organization=org.organization, name="Finance")
    renamed = scim.patch(
        f"Groups/{group.pk}", patch_op({"op": "replace", "path": "displayName", "value": "Money"})
    )
    assert renamed.status_code == 200, renamed.content
    assert scim.delete(f"Groups/{group.pk}").status_code == 204
    actions = [e.action for e in _by_token(created_token, target_id=str(group.pk))]
    assert actions == ["iam.group.updated", "iam.group.deleted"]


def test_the_batch_service_refuses_users_of_another_organization(
    org: Org, created_token: CreatedToken
) -> None:
    group = GroupFactory(organization=org.organization)
    stranger = MembershipFactory()
    with pytest.raises(ValidationError):
        group_change_members(
            group=group,
            actor=org.owner.user,
            add=[org.tech, stranger],
            via=created_token.token.audit_actor,
        )
    assert not group.members.exists()
