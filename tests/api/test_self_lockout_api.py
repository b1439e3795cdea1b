"""A change made through the API that would take the operation's own permission away
from the key's bearer is refused 409 `would_lock_out` until repeated with
`?confirm_lockout=true` (policies.lockout.api_refuses_self_lockout)."""

from __future__ import annotations

import pytest

from audit import events
from audit.models import AuditEvent
from organizations.models import Membership, Organization
from policies.models import Policy, PolicyAttachment
from tests.api.conftest import API, call, key_token
from tests.conftest import Org
from tests.factories import ApplicationFactory, GroupFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(org: Org) -> Membership:
    """A non-owner holding IAMManager through the `admins` group only."""
    membership = MembershipFactory(organization=org.organization)
    group = GroupFactory(organization=org.organization, name="admins")
    group.members.add(membership)
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    PolicyAttachment.objects.create(policy=policy, organization=org.organization, group=group)
    return membership


def _version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def test_leaving_the_group_that_grants_the_operation_is_refused_until_confirmed(
    org: Org, manager: Membership
) -> None:
    api = API(key_token(manager, manager))
    group_id = org.organization.groups.get(name="admins").pk
    path = f"/groups/{group_id}/members/{manager.pk}"
    version, count = _version(org), AuditEvent.objects.count()

    refused = call(api, "DELETE", path)

    assert refused.status_code == 409, refused.content
    error = refused.json()["error"]
    assert error["code"] == "would_lock_out"
    assert error["details"]["permission"] == "iam:groups:update"
    assert "confirm_lockout=true" in error["message"]
    # Rolled back: still a member, no event, no version bump; the key still works.
    assert org.organization.groups.get(pk=group_id).members.filter(pk=manager.pk).exists()
    assert (_version(org), AuditEvent.objects.count()) == (version, count)
    assert api.get(f"/groups/{group_id}").status_code == 200

    confirmed = call(api, "DELETE", f"{path}?confirm_lockout=true")

    assert confirmed.status_code == 200, confirmed.content
    assert not org.organization.groups.get(pk=group_id).members.filter(pk=manager.pk).exists()
    event = AuditEvent.objects.filter(action=events.SELF_LOCKOUT_CONFIRMED.name).latest("id")
    assert event.actor_type == "api_key"
    assert event.target_label == "iam:groups:update"
    assert api.get(f"/groups/{group_id}").status_code == 403


def test_an_application_key_is_guarded_too(org: Org) -> None:
    """Detaching the policy that grants an application's key the right to detach."""
    application = ApplicationFactory(organization=org.organization)
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    PolicyAttachment.objects.create(
        policy=policy, organization=org.organization, application=application
    )
    api = API(key_token(application, org.owner))
    path = f"/policies/{policy.pk}/attachments/application/{application.pk}"

    refused = call(api, "DELETE", path)

    assert refused.status_code == 409, refused.content
    assert refused.json()["error"]["details"]["permission"] == "iam:policies:attach"
    assert PolicyAttachment.objects.filter(policy=policy, application=application).exists()


def test_owners_are_never_asked(org: Org) -> None:
    api = API(key_token(org.owner, org.owner))
    group = GroupFactory(organization=org.organization)
    group.members.add(org.owner)
    response = call(api, "DELETE", f"/groups/{group.pk}/members/{org.owner.pk}")
    assert response.status_code == 200, response.content


def test_a_change_that_keeps_the_permission_needs_no_confirmation(
    org: Org, manager: Membership
) -> None:
    api = API(key_token(manager, manager))
    other = GroupFactory(organization=org.organization, name="readers")
    response = call(api, "PUT", f"/groups/{other.pk}/members/{org.tech.pk}")
    assert response.status_code == 200, response.content
