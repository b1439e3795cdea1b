from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from organizations.forms.invitations import InviteForm
from organizations.models import Invitation, Membership
from organizations.services import invitations as invitation_services
from organizations.services import people as people_services
from policies.models import Policy
from tests.accounts.helpers import expire_sudo
from tests.conftest import Org, assert_access
from tests.factories import (
    PASSWORD,
    AuditEventFactory,
    GroupFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def iam(org: Org) -> Membership:
    """An IAM administrator who is not an owner, as the demo's iam@ persona."""
    membership = MembershipFactory(organization=org.organization)
    for name in ("IAMManager", "AuditReader"):
        membership.policy_attachments.create(
            policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name=name),
            organization=org.organization,
        )
    return membership


def _client(membership: Membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


def _invite(org: Org, *emails: str, **kwargs: object) -> list[invitation_services.IssuedInvitation]:
    return invitation_services.invitations_create(
        organization=org.organization, actor=org.owner, emails=list(emails), **kwargs
    )


def _token(issued: invitation_services.IssuedInvitation) -> str:
    return issued.link.rstrip("/").rsplit("/", 1)[-1]


def test_inviting_several_people_emails_each_a_one_time_link(
    org: Org, django_capture_on_commit_callbacks
) -> None:
    group = GroupFactory(organization=org.organization, name="Devs")
    client = org.client_for("owner")
    url = reverse("organizations:invite", args=[org.organization.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "emails": "Ada@Example.com, bob@example.com\nada@example.com",
                "role": "tech",
                "groups": [group.pk],
            },
        )
    assert response.status_code == 302
    invitations = Invitation.objects.filter(organization=org.organization).order_by("email")
    assert [i.email for i in invitations] == ["ada@example.com", "bob@example.com"]
    assert all(i.status == "pending" and i.role == "tech" for i in invitations)
    assert len(mail.outbox) == 2
    # The raw token is only in the email and the one-time list of links, never stored.
    link = next(line for line in mail.outbox[0].body.splitlines() if "/invitations/" in line)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert not Invitation.objects.filter(token_hash=token).exists()
    page = client.get(reverse("organizations:invitation_list", args=[org.organization.pk]))
    assert token in page.content.decode()
    assert "no permission at all" not in page.content.decode()
    again = client.get(reverse("organizations:invitation_list", args=[org.organization.pk]))
    assert token not in again.content.decode()
    assert AuditEvent.objects.filter(action="iam.invitation.created").count() == 2


def test_one_invalid_address_refuses_them_all_with_a_message(org: Org) -> None:
    client = org.client_for("owner")
    url = reverse("organizations:invite", args=[org.organization.pk])
    response = client.post(url, {"emails": "ok@example.com, not-an-email", "role": ""})
    assert response.status_code == 400
    assert "not-an-email" in response.content.decode()
    assert not Invitation.objects.exists()


def test_existing_members_and_pending_invitations_are_refused(org: Org) -> None:
    _invite(org, "new@example.com")
    client = org.client_for("owner")
    url = reverse("organizations:invite", args=[org.organization.pk])
    response = client.post(url, {"emails": f"{org.tech.user.email}, new@example.com"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "already a member" in body and "already has a pending invitation" in body
    assert Invitation.objects.count() == 1


def test_the_organization_can_restrict_invitation_domains(org: Org) -> None:
    org.organization.invitation_domains = ["acme.example"]
    org.organization.save()
    client = org.client_for("owner")
    url = reverse("organizations:invite", args=[org.organization.pk])
    response = client.post(url, {"emails": "eve@elsewhere.example"})
    assert response.status_code == 400
    assert "limited to acme.example" in response.content.decode()
    assert client.post(url, {"emails": "ann@acme.example"}).status_code == 302


def test_only_owners_invite_owners(org: Org, iam: Membership) -> None:
    url = reverse("organizations:invite", args=[org.organization.pk])
    response = _client(iam).post(url, {"emails": "boss@example.com", "role": "owner"})
    assert response.status_code == 400
    assert "Only owners can invite new owners" in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_new_person_creates_an_account_and_joins_as_a_guest_with_role_and_groups(
    org: Org, client
) -> None:
    group = GroupFactory(organization=org.organization)
    issued = _invite(org, "newbie@example.com", role="billing", groups=[group])[0]
    url = reverse("organizations:invitation_accept", args=[_token(issued)])
    assert client.get(url).status_code == 200
    response = client.post(url, {"full_name": "New Bie", "password": "a-long-enough-passphrase"})
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="newbie@example.com")
    assert membership.kind == "guest" and not membership.is_owner
    assert group.members.filter(pk=membership.pk).exists()
    assert membership.policy_attachments.get().policy.name == "BillingAccess"
    invitation = Invitation.objects.get()
    assert invitation.status == "accepted" and invitation.accepted_by == membership.user
    # Used once: the same link now says so.
    client.logout()
    again = client.get(url)
    assert again.status_code == 410 and "already accepted" in again.content.decode()


def test_inviting_with_no_role_and_no_group_says_they_get_no_permission(org: Org) -> None:
    client = org.client_for("owner")
    url = reverse("organizations:invite", args=[org.organization.pk])
    page = client.post(url, {"emails": "plain@example.com"}, follow=True).content.decode()
    assert "1 invitation sent by email." in page
    assert "they join with no permission at all" in page


def test_an_existing_account_signs_in_and_accepts(org: Org) -> None:
    user = UserFactory(email="known@example.com")
    issued = _invite(org, "known@example.com", role="owner")[0]
    url = reverse("organizations:invitation_accept", args=[_token(issued)])
    anonymous = Client()
    page = anonymous.get(url).content.decode()
    assert "sign in to accept" in page
    login = anonymous.get(reverse("accounts:login"), {"next": url}).content.decode()
    assert "to accept your invitation" in login
    assert "invitation" not in anonymous.get(reverse("accounts:login")).content.decode()
    anonymous.login(email="known@example.com", password=PASSWORD)
    response = anonymous.post(url)
    assert response.status_code == 302
    assert Membership.objects.get(user=user, organization=org.organization).is_owner


def test_accepting_a_link_used_meanwhile_says_so_never_a_500(org: Org, monkeypatch) -> None:
    user = UserFactory(email="twice@example.com")
    issued = _invite(org, "twice@example.com")[0]
    url = reverse("organizations:invitation_accept", args=[_token(issued)])
    client = Client()
    client.force_login(user)
    # The page read the invitation while pending; another tab accepts it before the POST.
    stale = Invitation.objects.get(pk=issued.invitation.pk)
    monkeypatch.setattr(
        "organizations.views.invitations.invitation_selectors.invitation_by_token",
        lambda raw: stale,
    )
    Invitation.objects.filter(pk=stale.pk).update(status="accepted")
    response = client.post(url)
    assert response.status_code == 410
    assert not Membership.objects.filter(user=user, organization=org.organization).exists()


@pytest.mark.parametrize("problem", ["expired", "revoked", "used", "unknown", "other_email"])
def test_unusable_links_get_a_clear_page_never_a_500(org: Org, problem: str) -> None:
    issued = _invite(org, "someone@example.com")[0]
    invitation = issued.invitation
    token = _token(issued)
    client = Client()
    if problem == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(
            expires_at=timezone.now() - dt.timedelta(minutes=1)
        )
    elif problem == "revoked":
        invitation_services.invitation_revoke(invitation=invitation, actor=org.owner)
    elif problem == "used":
        Invitation.objects.filter(pk=invitation.pk).update(status="accepted")
    elif problem == "unknown":
        token = "not-a-real-token"
    else:
        client.force_login(org.tech.user)
    response = client.get(reverse("organizations:invitation_accept", args=[token]))
    assert response.status_code in (403, 404, 410)
    assert "Join" not in response.content.decode()
    assert client.post(reverse("organizations:invitation_accept", args=[token])).status_code in (
        403,
        404,
        410,
    )


def test_resend_kills_the_old_link_and_revoke_kills_the_invitation(org: Org) -> None:
    issued = _invite(org, "again@example.com")[0]
    client = org.client_for("owner")
    resend = reverse(
        "organizations:invitation_resend", args=[org.organization.pk, issued.invitation.pk]
    )
    assert client.post(resend).status_code == 302
    old = reverse("organizations:invitation_accept", args=[_token(issued)])
    assert client.get(old).status_code == 404
    revoke = reverse(
        "organizations:invitation_revoke", args=[org.organization.pk, issued.invitation.pk]
    )
    assert client.post(revoke).status_code == 302
    assert Invitation.objects.get().status == "revoked"
    # Revoking twice is refused with a message, not an error.
    response = client.post(revoke, follow=True)
    assert "Only pending invitations" in response.content.decode()


def test_invitation_pages_are_guarded(org: Org) -> None:
    issued = _invite(org, "x@example.com")[0]
    base = org.organization.pk
    assert_access(
        org,
        "get",
        reverse("organizations:invitation_list", args=[base]),
        {"owner": 200, "tech": 200, "billing": 403, "readonly": 200, "outsider": 404},
    )
    assert_access(
        org,
        "post",
        reverse("organizations:invitation_revoke", args=[base, issued.invitation.pk]),
        {"readonly": 403, "tech": 403, "outsider": 404},
    )


def test_the_invitation_list_runs_constant_queries(org: Org, django_assert_max_num_queries) -> None:
    client = org.client_for("owner")
    url = reverse("organizations:invitation_list", args=[org.organization.pk])
    group = GroupFactory(organization=org.organization)
    _invite(org, "a@example.com", groups=[group])
    client.get(url)
    with django_assert_max_num_queries(9) as few:
        client.get(url)
    _invite(org, *[f"p{n}@example.com" for n in range(30)], groups=[group])
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def _list_url(org: Org) -> str:
    return reverse("organizations:invitation_list", args=[org.organization.pk])


def _action_url(org: Org, action: str, invitation: Invitation) -> str:
    return reverse(f"organizations:invitation_{action}", args=[org.organization.pk, invitation.pk])


def test_only_owners_resend_or_revoke_an_owner_invitation(org: Org, iam: Membership) -> None:
    owner_invite = _invite(org, "boss@example.com", role="owner")[0].invitation
    tech_invite = _invite(org, "dev@example.com", role="tech")[0].invitation
    token_hash = owner_invite.token_hash
    client = _client(iam)
    page = client.get(_list_url(org)).content.decode()
    assert _action_url(org, "resend", owner_invite) not in page
    assert _action_url(org, "revoke", owner_invite) not in page
    assert "Only owners resend or revoke it" in page
    assert _action_url(org, "resend", tech_invite) in page
    for action in ("resend", "revoke"):
        response = client.post(_action_url(org, action, owner_invite), follow=True)
        body = response.content.decode()
        assert response.status_code == 200
        assert f"Only owners can {action} an invitation to become an owner." in body
        assert "issued-links" not in body  # no link shown
    owner_invite.refresh_from_db()
    assert owner_invite.status == "pending" and owner_invite.token_hash == token_hash
    assert not AuditEvent.objects.filter(
        action__in=["iam.invitation.resent", "iam.invitation.revoked"]
    ).exists()
    # Other invitations stay theirs to handle; owners handle every one.
    assert client.post(_action_url(org, "resend", tech_invite)).status_code == 302
    assert "iam.invitation.resent" in AuditEvent.objects.values_list("action", flat=True)
    owner_client = org.client_for("owner")
    assert (
        _action_url(org, "resend", owner_invite)
        in owner_client.get(_list_url(org)).content.decode()
    )
    owner_client.post(_action_url(org, "revoke", owner_invite))
    owner_invite.refresh_from_db()
    assert owner_invite.status == "revoked"


def test_an_owner_invitation_works_only_while_its_issuer_is_an_owner(org: Org) -> None:
    second = MembershipFactory(organization=org.organization, is_owner=True)
    issued = invitation_services.invitations_create(
        organization=org.organization, actor=second, emails=["heir@example.com"], role="owner"
    )[0]
    people_services.owner_step_down(membership=second)
    url = reverse("organizations:invitation_accept", args=[_token(issued)])
    client = Client()
    page = client.get(url)
    assert page.status_code == 410
    assert "no longer an owner" in page.content.decode()
    response = client.post(url, {"full_name": "Heir", "password": "a-long-enough-passphrase"})
    assert response.status_code == 410
    assert not Membership.objects.filter(user__email="heir@example.com").exists()
    # Resent by a current owner, the invitation is theirs and the new link works.
    again = invitation_services.invitation_resend(invitation=issued.invitation, actor=org.owner)
    assert Invitation.objects.get().invited_by == org.owner.user
    url = reverse("organizations:invitation_accept", args=[_token(again)])
    response = client.post(url, {"full_name": "Heir", "password": "a-long-enough-passphrase"})
    assert response.status_code == 302
    assert Membership.objects.get(user__email="heir@example.com").is_owner


def test_resending_asks_to_confirm_it_is_you_when_the_confirmation_is_stale(org: Org) -> None:
    invitation = _invite(org, "again@example.com")[0].invitation
    client = org.client_for("owner")
    expire_sudo(client)
    response = client.post(
        _action_url(org, "resend", invitation), HTTP_REFERER=f"http://testserver{_list_url(org)}"
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:confirm"))
    assert Invitation.objects.get().token_hash == invitation.token_hash
    assert not AuditEvent.objects.filter(action="iam.invitation.resent").exists()


def test_pages_showing_an_issued_link_are_never_cached(org: Org) -> None:
    client = org.client_for("owner")
    created = client.post(
        reverse("organizations:invite", args=[org.organization.pk]),
        {"emails": "fresh@example.com"},
        follow=True,
    )
    assert "issued-links" in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    invitation = Invitation.objects.get()
    resent = client.post(_action_url(org, "resend", invitation), follow=True)
    assert "issued-links" in resent.content.decode()
    assert "no-store" in resent["Cache-Control"]


def test_a_huge_address_list_is_refused_before_it_is_parsed(org: Org, monkeypatch) -> None:
    def never(value: str) -> str:
        raise AssertionError("no address is validated")

    monkeypatch.setattr(invitation_services, "canonical_email", never)
    huge = " ".join(f"user{n}@example.com" for n in range(90_000))  # 1.7 MB
    form = InviteForm({"emails": huge}, organization=org.organization)
    assert not form.is_valid()
    assert form.errors["emails"] == [
        "Paste at most 12,800 characters: invite up to 50 people at a time."
    ]
    client = org.client_for("owner")
    url = reverse("organizations:invite", args=[org.organization.pk])
    # Under the request body limit (iamportal.middleware), over the field's.
    response = client.post(url, {"emails": huge[:200_000]})
    assert response.status_code == 400
    assert "Paste at most 12,800 characters" in response.content.decode()
    # Within the characters, more than 50 addresses are refused before validation too.
    response = client.post(url, {"emails": huge[:2000]})
    assert response.status_code == 400
    assert "Invite at most 50 people at a time." in response.content.decode()
    assert not Invitation.objects.exists()


def test_parse_emails_keeps_the_order_typed_without_duplicates() -> None:
    valid, invalid = invitation_services.parse_emails(
        "B@x.example; a@x.example, <b@x.example> bad\nbad"
    )
    assert valid == ["b@x.example", "a@x.example"]
    assert invalid == ["bad"]


def test_invitation_emails_are_limited_per_organization_and_hour(
    org: Org, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(invitation_services, "INVITATION_EMAILS_PER_HOUR", 3)
    # Emails sent over an hour ago no longer count.
    AuditEventFactory(
        organization=org.organization,
        action="iam.invitation.created",
        occurred_at=timezone.now() - dt.timedelta(minutes=61),
    )
    first = _invite(org, "a@example.com", "b@example.com")[0]
    invitation_services.invitation_resend(invitation=first.invitation, actor=org.owner)
    sent = AuditEvent.objects.filter(
        action__in=["iam.invitation.created", "iam.invitation.resent"],
        occurred_at__gt=timezone.now() - dt.timedelta(hours=1),
    )
    oldest = sent.order_by("occurred_at").first().occurred_at
    retry = timezone.localtime(oldest + dt.timedelta(hours=1, minutes=1))
    message = f"You can send 3 invitations per hour; try again after {retry:%H:%M} UTC."
    client = org.client_for("owner")
    events_before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("organizations:invite", args=[org.organization.pk]),
            {"emails": "c@example.com"},
        )
        resend = client.post(_action_url(org, "resend", first.invitation), follow=True)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert message in resend.content.decode()
    assert Invitation.objects.count() == 2
    assert Invitation.objects.get(pk=first.invitation.pk).token_hash != first.invitation.token_hash
    assert mail.outbox == []
    assert AuditEvent.objects.count() == events_before


def test_a_name_stored_with_a_newline_still_sends_invitations(
    org: Org, django_capture_on_commit_callbacks
) -> None:
    # Stored before names were checked.
    type(org.organization).objects.filter(pk=org.organization.pk).update(name="Acme\r\nEvil\u202e")
    client = org.client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("organizations:invite", args=[org.organization.pk]),
            {"emails": "ada@example.com"},
        )
    assert response.status_code == 302
    assert [message.subject for message in mail.outbox] == [
        "You are invited to join Acme Evil on IAM Portal"
    ]
