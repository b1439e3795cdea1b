from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from organizations.models import Membership
from organizations.services import people as people_services
from policies.models import Policy
from tests.accounts.helpers import expire_sudo
from tests.conftest import Org, assert_access
from tests.factories import (
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def test_users_list_searches_and_filters(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Ops")
    group.members.add(org.tech)
    org.billing.status = "suspended"
    org.billing.save()
    client = org.client_for("owner")
    url = _url("user_list", org)

    def emails(**params: str) -> set[str]:
        response = client.get(url, params)
        assert response.status_code == 200
        return {m.user.email for m in response.context["page"]}

    assert emails(q=org.tech.user.email.upper()) == {org.tech.user.email}
    assert emails(kind="owner") == {org.owner.user.email}
    assert emails(status="suspended") == {org.billing.user.email}
    assert emails(group=str(group.pk)) == {org.tech.user.email}
    assert emails(group="ops") == {org.tech.user.email}  # a group's name, typed
    assert emails(group="no such group") == set()
    assert emails(mfa="yes") == set()
    assert len(emails(kind="bogus")) == 4  # junk filters are ignored


def test_search_as_you_type_returns_only_the_results_fragment(org: Org) -> None:
    client = org.client_for("owner")
    response = client.get(
        _url("user_list", org), {"q": "zzz"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="user-results"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="user-results">')
    assert "No user matches these filters" in body


def test_users_list_runs_constant_queries(org: Org, django_assert_max_num_queries) -> None:
    client = org.client_for("owner")
    url = _url("user_list", org)
    client.get(url)
    with django_assert_max_num_queries(20) as few:
        client.get(url)
    group = GroupFactory(organization=org.organization)
    for _ in range(20):
        group.members.add(MembershipFactory(organization=org.organization))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_user_pages_are_guarded(org: Org) -> None:
    assert_access(
        org,
        "get",
        _url("user_detail", org, org.tech.pk),
        {"owner": 200, "tech": 200, "billing": 403, "readonly": 200, "outsider": 404},
    )
    other = MembershipFactory()
    assert org.client_for("owner").get(_url("user_detail", org, other.pk)).status_code == 404
    assert_access(
        org,
        "post",
        _url("user_suspend", org, org.tech.pk),
        {"readonly": 403, "billing": 403, "outsider": 404},
    )


def test_creating_a_member_sends_a_one_time_password_link(
    org: Org, django_capture_on_commit_callbacks
) -> None:
    client = org.client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _url("member_create", org), {"full_name": "Mem Ber", "email": "Mem@Example.com"}
        )
    assert response.status_code == 302
    user = User.objects.get(email="mem@example.com")
    assert user.managed_by == org.organization and not user.has_usable_password()
    assert Membership.objects.get(user=user).kind == "member"
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password/set/" in line)
    path = "/" + link.split("/", 3)[3]
    anonymous = Client()
    assert anonymous.get(path).status_code == 200
    response = anonymous.post(
        path, {"new_password1": "member-pass-2026!", "new_password2": "member-pass-2026!"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("member-pass-2026!")
    assert Client().get(path).status_code == 404  # single use
    assert AuditEvent.objects.filter(action="iam.user.created").exists()


def test_a_member_email_that_already_has_an_account_is_refused(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(
        _url("member_create", org), {"full_name": "X", "email": org.tech.user.email.upper()}
    )
    assert response.status_code == 400
    assert "invite it instead" in response.content.decode()


def test_members_cannot_create_organizations(org: Org) -> None:
    created = people_services.member_create(
        organization=org.organization, actor=org.owner.user, email="m@example.com", full_name="M"
    )
    client = Client()
    client.force_login(created.membership.user)
    response = client.post(reverse("organizations:list"), {"name": "Mine"})
    assert response.status_code == 400
    assert "cannot create or own" in response.content.decode()


def test_suspending_denies_everything_and_reactivating_restores(org: Org) -> None:
    owner = org.client_for("owner")
    tech = org.client_for("tech")
    projects = _url("project_list", org)
    assert tech.get(projects).status_code == 200
    assert owner.post(_url("user_suspend", org, org.tech.pk)).status_code == 302
    assert tech.get(projects).status_code == 403
    owner.post(_url("user_reactivate", org, org.tech.pk))
    assert tech.get(projects).status_code == 200
    assert AuditEvent.objects.filter(action="iam.user.suspended").count() == 1


def test_the_last_owner_cannot_be_suspended_or_removed(org: Org) -> None:
    with pytest.raises(Exception, match=r"last owner|yourself"):
        people_services.membership_suspend(membership=org.owner, actor=org.owner)
    other_owner = MembershipFactory(organization=org.organization, is_owner=True)
    people_services.membership_suspend(membership=other_owner, actor=org.owner)
    # A suspended owner can no longer act, so the remaining owner stays.
    with pytest.raises(Exception, match="membership changed"):
        people_services.membership_remove(membership=org.owner, actor=other_owner)


def test_iam_managers_cannot_act_on_owners(org: Org) -> None:
    with pytest.raises(Exception, match="Only owners"):
        people_services.membership_suspend(membership=org.owner, actor=org.tech)


def test_a_non_owner_sees_no_action_the_services_refuse_on_an_owner(org: Org) -> None:
    """IAMManager holds suspend and remove, but only owners act on owners: the owner's
    page offers neither, while a colleague's page offers both."""
    manager = MembershipFactory(organization=org.organization)
    iam = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    manager.policy_attachments.create(policy=iam, organization=org.organization)
    client = Client()
    client.force_login(manager.user)

    owner_page = client.get(_url("user_detail", org, org.owner.pk)).content.decode()
    colleague_page = client.get(_url("user_detail", org, org.tech.pk)).content.decode()

    for page, shown in ((owner_page, False), (colleague_page, True)):
        assert (">Suspend</button>" in page) is shown
        assert (">Remove…</a>" in page) is shown


def test_removing_a_guest_keeps_their_account_and_a_member_deletes_it(org: Org) -> None:
    client = org.client_for("owner")
    url = _url("user_remove", org, org.tech.pk)
    assert client.get(url).status_code == 200
    wrong = client.post(url, {"confirm": "nope"})
    assert wrong.status_code == 400 and Membership.objects.filter(pk=org.tech.pk).exists()
    assert client.post(url, {"confirm": org.tech.user.email}).status_code == 302
    assert not Membership.objects.filter(pk=org.tech.pk).exists()
    assert User.objects.filter(pk=org.tech.user.pk).exists()
    member = people_services.member_create(
        organization=org.organization, actor=org.owner.user, email="m@example.com", full_name="M"
    ).membership
    client.post(_url("user_remove", org, member.pk), {"confirm": "m@example.com"})
    assert not User.objects.filter(email="m@example.com").exists()


def test_groups_are_added_and_removed_from_the_user_page(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Ops")
    client = org.client_for("owner")
    url = _url("user_groups", org, org.tech.pk)
    response = client.post(url, {"add": group.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="user-groups"' in response.content.decode()
    assert group.members.filter(pk=org.tech.pk).exists()
    # The policies card is refreshed out of band: the group's policies now come through it.
    policy = PolicyFactory(organization=org.organization, name="ops-runbooks")
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    client.post(url, {"remove": group.pk}, HTTP_HX_REQUEST="true")
    body = client.post(url, {"add": group.pk}, HTTP_HX_REQUEST="true").content.decode()
    panel = body[body.index('<section id="principal-policies"') :]
    assert 'hx-swap-oob="true"' in panel.split(">", 1)[0]
    assert "ops-runbooks" in panel and "via group Ops" in panel
    assert body.count('id="messages"') <= 1
    foreign = GroupFactory()
    response = client.post(url, {"add": foreign.pk}, follow=True)
    assert "does not exist in this organization" in response.content.decode()
    client.post(url, {"remove": group.pk})
    assert not group.members.exists()


def test_a_malformed_group_id_is_a_message_never_a_500(org: Org) -> None:
    client = org.client_for("owner")
    url = _url("user_groups", org, org.tech.pk)
    response = client.post(url, {"add": "not-a-uuid"}, follow=True)
    assert response.status_code == 200
    assert "does not exist in this organization" in response.content.decode()


def test_the_htmx_groups_card_leaves_issued_links_for_the_page(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Ops")
    client = org.client_for("owner")
    session = client.session
    session["issued_links"] = [["tech@example.com", "https://example.com/link"]]
    session.save()
    url = _url("user_groups", org, org.tech.pk)
    response = client.post(url, {"add": group.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "https://example.com/link" not in response.content.decode()
    assert client.session["issued_links"] == [["tech@example.com", "https://example.com/link"]]
    page = client.get(_url("user_detail", org, org.tech.pk))
    assert "https://example.com/link" in page.content.decode()
    assert "issued_links" not in client.session


def test_pages_showing_a_password_link_are_never_cached(
    org: Org, django_capture_on_commit_callbacks
) -> None:
    client = org.client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            _url("member_create", org), {"full_name": "M", "email": "m@x.example"}
        )
    page = client.get(created["Location"])
    assert "/password/set/" in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    member = Membership.objects.get(user__email="m@x.example")
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(_url("user_password_link", org, member.pk), follow=True)
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/password/set/" in line)
    assert link.strip() in sent.content.decode()
    assert "no-store" in sent["Cache-Control"]


def test_sending_a_password_link_asks_for_a_fresh_confirmation(org: Org) -> None:
    member = people_services.member_create(
        organization=org.organization, actor=org.owner.user, email="m@x.example", full_name="M"
    ).membership
    client = org.client_for("owner")
    expire_sudo(client)
    response = client.post(_url("user_password_link", org, member.pk))
    assert response["Location"].startswith(reverse("accounts:confirm"))
    assert not AuditEvent.objects.filter(action="iam.user.password_link_sent").exists()


def test_joining_a_group_from_the_user_page_asks_for_a_fresh_confirmation(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Ops")
    client = org.client_for("owner")
    expire_sudo(client)
    url = _url("user_groups", org, org.tech.pk)
    response = client.post(url, {"add": group.pk})
    assert response["Location"].startswith(reverse("accounts:confirm"))
    htmx = client.post(url, {"add": group.pk}, HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"].startswith(reverse("accounts:confirm"))
    assert not group.members.exists()


def test_password_links_are_only_for_members(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(_url("user_password_link", org, org.tech.pk), follow=True)
    assert "guests reset their own password" in response.content.decode()


def test_anyone_can_leave_unless_sole_owner(org: Org) -> None:
    tech = org.client_for("tech")
    url = _url("leave", org)
    assert tech.get(url).status_code == 200
    assert tech.post(url).status_code == 302
    assert not Membership.objects.filter(pk=org.tech.pk).exists()
    owner = org.client_for("owner")
    response = owner.post(url)
    assert response.status_code == 400 and "last owner" in response.content.decode()
    outsider = org.client_for("outsider")
    assert outsider.post(url).status_code == 404


def test_owners_grant_ownership_and_step_down(org: Org) -> None:
    owner = org.client_for("owner")
    assert owner.post(_url("user_make_owner", org, org.tech.pk)).status_code == 302
    org.tech.refresh_from_db()
    assert org.tech.is_owner
    assert owner.post(_url("owner_step_down", org)).status_code == 302
    org.owner.refresh_from_db()
    assert not org.owner.is_owner
    # The remaining owner is the last one: stepping down is refused.
    tech = org.client_for("tech")
    response = tech.post(_url("owner_step_down", org), follow=True)
    assert "last owner" in response.content.decode()
    org.tech.refresh_from_db()
    assert org.tech.is_owner


def test_non_owners_cannot_grant_ownership(org: Org) -> None:
    with pytest.raises(Exception, match="Only owners"):
        people_services.owner_grant(membership=org.billing, actor=org.tech)
    guest = UserFactory()
    member = people_services.member_create(
        organization=org.organization, actor=org.owner.user, email="mm@example.com", full_name="M"
    ).membership
    assert guest
    with pytest.raises(Exception, match="cannot own"):
        people_services.owner_grant(membership=member, actor=org.owner)
