"""`/api/v1/invitations`: list, create (links returned once), resend, revoke, through the
console's services, audited with the key as the actor, each allowed exactly as the
evaluator decides for the key's bearer."""

from __future__ import annotations

import pytest

from audit import events
from organizations.models import Invitation, Membership
from organizations.services import invitations as invitation_services
from tests.api.conftest import (
    API,
    PERSONAS,
    allow,
    call,
    check_role,
    key_token,
    last_event,
    persona_api,
)
from tests.conftest import Org
from tests.factories import GroupFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_api(org: Org) -> API:
    return API(key_token(org.owner, org.owner))


def invite(org: Org, email: str, role: str = "") -> Invitation:
    return invitation_services.invitations_create(
        organization=org.organization, actor=org.owner, emails=[email], role=role
    )[0].invitation


def test_create_returns_the_links_once_and_is_audited(org: Org, owner_api: API) -> None:
    group = GroupFactory(organization=org.organization)
    response = owner_api.post(
        "/invitations",
        {
            "emails": ["Ada@Example.com", "grace@example.com"],
            "role": "tech",
            "groups": [str(group.pk)],
        },
    )
    assert response.status_code == 201, response.content
    issued = response.json()["invitations"]
    assert [i["invitation"]["email"] for i in issued] == ["ada@example.com", "grace@example.com"]
    first = issued[0]
    assert first["invitation"]["role"] == "tech" and first["invitation"]["status"] == "pending"
    assert first["invitation"]["groups"] == [{"id": str(group.pk), "name": group.name}]
    assert "/invitations/" in first["link"]
    assert first["link"] != issued[1]["link"]
    assert last_event(org.organization, events.INVITATION_CREATED).target_label in {
        "ada@example.com",
        "grace@example.com",
    }
    # The link is never shown again.
    listed = owner_api.get("/invitations").json()["items"]
    assert len(listed) == 2 and "link" not in listed[0]


def test_create_refusals(org: Org, owner_api: API) -> None:
    bad = owner_api.post("/invitations", {"emails": ["not an address"]})
    assert bad.status_code == 400 and "emails" in bad.json()["error"]["details"]
    member = owner_api.post("/invitations", {"emails": [org.tech.user.email]})
    assert member.status_code == 400
    # Only owners invite owners, whatever the key's permissions.
    manager = MembershipFactory(organization=org.organization)
    allow(manager, "iam:users:invite")
    response = API(key_token(manager, manager)).post(
        "/invitations", {"emails": ["x@example.com"], "role": "owner"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["role"] == ["Only owners can invite new owners."]
    assert not Invitation.objects.filter(email="x@example.com").exists()


def test_list_filters_and_pages(org: Org, owner_api: API) -> None:
    first, second, third = (invite(org, f"p{n}@example.com") for n in range(3))
    invitation_services.invitation_revoke(invitation=third, actor=org.owner)
    page = owner_api.get("/invitations?limit=2").json()
    assert [i["id"] for i in page["items"]] == [str(first.pk), str(second.pk)]
    rest = owner_api.get(f"/invitations?limit=2&cursor={page['next']}").json()
    assert [i["id"] for i in rest["items"]] == [str(third.pk)] and rest["next"] is None
    revoked = owner_api.get("/invitations?status=revoked").json()["items"]
    assert [i["id"] for i in revoked] == [str(third.pk)]


def test_resend_returns_a_new_link_and_revoke(org: Org, owner_api: API) -> None:
    invitation = invite(org, "ada@example.com")
    response = owner_api.post(f"/invitations/{invitation.pk}/resend", {})
    assert response.status_code == 200, response.content
    assert response.json()["link"] and response.json()["invitation"]["id"] == str(invitation.pk)
    assert last_event(org.organization, events.INVITATION_RESENT).target_id == str(invitation.pk)
    response = owner_api.post(f"/invitations/{invitation.pk}/revoke", {})
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    last_event(org.organization, events.INVITATION_REVOKED)
    again = owner_api.post(f"/invitations/{invitation.pk}/revoke", {})
    assert again.status_code == 400


OPERATIONS = [
    ("GET", "/invitations", "iam:invitations:list"),
    ("POST", "/invitations", "iam:users:invite"),
    ("POST", "/invitations/{id}/resend", "iam:invitations:resend"),
    ("POST", "/invitations/{id}/revoke", "iam:invitations:revoke"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "path", "action"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, path: str, action: str) -> None:
    target = invite(org, "target@example.com")
    body = {"emails": ["new@example.com"]} if method == "POST" and "{id}" not in path else None
    response = call(persona_api(org, who), method, path.format(id=target.pk), body)
    if who == "outsider" and path == "/invitations" and method == "POST":
        # Its own organization: the invitation is made there, not here.
        assert response.status_code == 201
        outsider = Membership.objects.get(user=org.outsider)
        assert Invitation.objects.get(email="new@example.com").organization == outsider.organization
        return
    check_role(org, who, response, action, listing=path == "/invitations")
    if who == "outsider" and method == "GET":
        assert response.json()["items"] == []
