"""View as (#16): an IAM administrator reads the console as another principal, read-only;
every decision is the target's and the viewer's own."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import BillingContact, Membership
from organizations.services.people import membership_suspend
from policies.authz import VIEW_AS_SESSION_KEY
from policies.models import PolicyAttachment, Rule
from tests.api.conftest import allow, key_token
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    MembershipFactory,
    OrganizationFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
    grant,
)

pytestmark = pytest.mark.django_db


def start_url(org: Org, membership: Membership) -> str:
    return reverse("iamtools:view_as_user", args=[org.organization.pk, membership.pk])


def stop_url(org: Org) -> str:
    return reverse("iamtools:view_as_stop", args=[org.organization.pk])


def page(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def viewing(org: Org, who: str, target: str) -> Client:
    """A client of persona `who` viewing the organization as persona `target`."""
    client = org.client_for(who)
    response = client.post(start_url(org, getattr(org, target)))
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == page("dashboard", org)
    return client


def events_of(org: Org, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=org.organization, action=action))


# ----------------------------------------------------------------------- start and stop


def test_start_and_stop_are_audited_and_the_banner_shows_meanwhile(org: Org) -> None:
    client = viewing(org, "owner", "billing")
    [started] = events_of(org, "iam.view_as.started")
    assert started.actor_user == org.owner.user
    assert started.target_id == str(org.billing.pk)
    assert started.target_label == org.billing.user.email

    body = client.get(page("dashboard", org)).content.decode()
    assert f"Viewing as <strong>{org.billing.user.email}</strong> (read-only)" in body
    assert stop_url(org) in body

    response = client.post(stop_url(org))
    assert response.status_code == 302
    assert response["Location"] == page("user_detail", org, org.billing.pk)
    [stopped] = events_of(org, "iam.view_as.stopped")
    assert stopped.actor_user == org.owner.user
    assert stopped.target_id == str(org.billing.pk)
    body = client.get(page("dashboard", org)).content.decode()
    assert "Viewing as" not in body
    assert client.get(page("user_list", org)).status_code == 200


def test_the_button_is_on_a_users_and_an_applications_page(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    client = org.client_for("owner")
    body = client.get(page("user_detail", org, org.billing.pk)).content.decode()
    assert start_url(org, org.billing) in body
    # Not on your own page.
    own = client.get(page("user_detail", org, org.owner.pk)).content.decode()
    assert start_url(org, org.owner) not in own
    view_as_app = reverse(
        "iamtools:view_as_application", args=[org.organization.pk, application.pk]
    )
    body = client.get(page("application_detail", org, application.pk)).content.decode()
    assert view_as_app in body
    # Billing holds no simulator: no button.
    body = org.client_for("billing").get(page("user_detail", org, org.tech.pk))
    assert start_url(org, org.tech) not in body.content.decode()


def test_viewing_as_an_application(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    client = org.client_for("owner")
    url = reverse("iamtools:view_as_application", args=[org.organization.pk, application.pk])
    assert client.post(url).status_code == 302
    # No policy grants the application anything: the dashboard refuses it, and says so.
    response = client.get(page("dashboard", org))
    assert response.status_code == 403
    body = response.content.decode()
    assert f"{application.name} does not have permission" in body
    assert stop_url(org) in body


# ------------------------------------------------------------------------- decisions


def test_an_owner_viewing_as_billing_sees_the_billing_console(org: Org) -> None:
    client = viewing(org, "owner", "billing")
    assert client.get(page("invoice_list", org)).status_code == 200
    assert client.get(page("billing_contact", org)).status_code == 200
    response = client.get(page("user_list", org))
    assert response.status_code == 403
    body = response.content.decode()
    assert f"{org.billing.user.email} does not have permission" in body
    assert "iam:users:list" in body
    assert client.get(reverse("iamtools:simulator", args=[org.organization.pk])).status_code == 403
    # The navigation is billing's: no IAM, projects or settings.
    nav = client.get(page("dashboard", org)).content.decode()
    assert page("invoice_list", org) in nav
    assert page("user_list", org) not in nav
    assert page("project_list", org) not in nav
    assert page("settings", org) not in nav


def test_an_owners_badge_and_controls_follow_the_viewed_principal(org: Org) -> None:
    owner_badge = '<span class="badge">Owner</span></p>'
    guest = MembershipFactory(organization=org.organization)  # an account of its own
    assert owner_badge in org.client_for("owner").get(page("dashboard", org)).content.decode()
    owner_view = org.client_for("owner")
    audit_url = reverse("audit:event_list", args=[org.organization.pk])
    assert "Integrity" in owner_view.get(audit_url).content.decode()
    assert "Make owner" in owner_view.get(page("user_detail", org, guest.pk)).content.decode()
    grant(org.readonly, actions=["audit:events:list"])  # reads the trail and users
    client = viewing(org, "owner", "readonly")
    assert owner_badge not in client.get(page("dashboard", org)).content.decode()
    audit = client.get(audit_url)
    assert audit.status_code == 200 and "Integrity" not in audit.content.decode()
    user_page = client.get(page("user_detail", org, guest.pk))
    assert user_page.status_code == 200 and "Make owner" not in user_page.content.decode()


def test_the_viewer_never_sees_more_than_they_may_read_themself(org: Org) -> None:
    # Tech holds the simulator but no billing: viewing as billing does not lend it.
    client = viewing(org, "tech", "billing")
    response = client.get(page("invoice_list", org))
    assert response.status_code == 403
    assert "you are not" in response.content.decode()
    assert client.get(page("user_list", org)).status_code == 403  # billing's refusal
    nav = client.get(page("dashboard", org)).content.decode()
    assert page("invoice_list", org) not in nav


def test_viewing_as_an_owner_leaves_the_viewers_own_decisions(org: Org) -> None:
    client = viewing(org, "tech", "owner")
    assert client.get(page("user_list", org)).status_code == 200
    assert client.get(page("project_list", org)).status_code == 200
    assert client.get(page("invoice_list", org)).status_code == 403


def test_writes_are_refused_while_viewing_and_stop_is_not(org: Org) -> None:
    client = viewing(org, "owner", "billing")
    # Billing may change the billing contact, but not while being viewed.
    response = client.post(
        page("billing_contact_update", org), {"name": "X", "email": "x@example.com"}
    )
    assert response.status_code == 403
    body = response.content.decode()
    assert f"You are viewing as {org.billing.user.email}; stop viewing to make changes" in body
    assert stop_url(org) in body
    assert not BillingContact.objects.filter(organization=org.organization).exists()
    response = client.post(page("user_suspend", org, org.tech.pk))
    assert response.status_code == 403
    org.tech.refresh_from_db()
    assert org.tech.is_active
    # Starting again is a write too.
    assert client.post(start_url(org, org.tech)).status_code == 403
    assert client.post(stop_url(org)).status_code == 302
    assert client.post(page("user_suspend", org, org.tech.pk)).status_code == 302


def test_an_organizations_own_pages_are_read_only_too(org: Org) -> None:
    client = viewing(org, "tech", "readonly")
    response = client.post(reverse("organizations:leave", args=[org.organization.pk]))
    assert response.status_code == 403
    assert "stop viewing to make changes" in response.content.decode()
    assert Membership.objects.filter(pk=org.tech.pk).exists()


def test_the_api_is_never_affected(org: Org) -> None:
    client = viewing(org, "owner", "billing")
    token = key_token(org.owner, org.owner)
    response = client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_another_organization_is_unaffected(org: Org) -> None:
    other = OrganizationFactory(name="Other")
    MembershipFactory(organization=other, user=org.owner.user, is_owner=True)
    client = viewing(org, "owner", "billing")
    response = client.get(reverse("organizations:user_list", args=[other.pk]))
    assert response.status_code == 200
    assert "Viewing as" not in response.content.decode()
    # Writes there are not refused (an empty form: 400).
    response = client.post(reverse("organizations:project_create", args=[other.pk]), {})
    assert response.status_code == 400
    # Still viewing in the first one.
    assert client.get(page("user_list", org)).status_code == 403


# ----------------------------------------------------------------------------- guard


def test_who_may_start(org: Org) -> None:
    # Billing holds no `iam:simulator:use`.
    assert org.client_for("billing").post(start_url(org, org.tech)).status_code == 403
    assert org.client_for("outsider").post(start_url(org, org.tech)).status_code == 404
    # Another organization's principal does not exist here.
    stranger = Membership.objects.get(user=org.outsider)
    url = reverse("iamtools:view_as_user", args=[org.organization.pk, stranger.pk])
    assert org.client_for("owner").post(url).status_code == 404
    assert org.client_for("owner").get(start_url(org, org.tech)).status_code == 405
    assert events_of(org, "iam.view_as.started") == []


def test_yourself_and_suspended_principals_are_refused(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(start_url(org, org.owner), follow=True)
    assert "You already see the console as yourself" in response.content.decode()
    membership_suspend(membership=org.tech, actor=org.owner)
    response = client.post(start_url(org, org.tech), follow=True)
    assert "is suspended" in response.content.decode()
    assert VIEW_AS_SESSION_KEY not in client.session or not client.session[VIEW_AS_SESSION_KEY]
    assert events_of(org, "iam.view_as.started") == []


def test_it_ends_when_the_target_is_suspended(org: Org) -> None:
    client = viewing(org, "owner", "billing")
    membership_suspend(membership=org.billing, actor=org.owner)
    response = client.get(page("user_list", org))
    assert response.status_code == 200
    body = response.content.decode()
    assert "(read-only)" not in body
    assert "has ended" in body and "is suspended" in body
    assert events_of(org, "iam.view_as.stopped")[0].data["reason"].endswith("is suspended")


def test_it_ends_when_the_viewer_loses_the_simulator(org: Org) -> None:
    client = viewing(org, "tech", "readonly")
    assert client.get(page("user_list", org)).status_code == 200
    PolicyAttachment.objects.filter(membership=org.tech).delete()
    organization = org.organization
    organization.authz_version += 1
    organization.save(update_fields=["authz_version"])
    body = client.get(page("dashboard", org)).content.decode()
    assert "no longer hold iam:simulator:use" in body
    assert "(read-only)" not in body


def test_signing_out_ends_it(org: Org) -> None:
    client = viewing(org, "owner", "billing")
    client.post(reverse("accounts:logout"))
    client.force_login(org.owner.user)
    assert client.get(page("user_list", org)).status_code == 200


# ------------------------------------------------------------------------------ cost


def _queries(client: Client, url: str) -> int:
    client.get(url)  # warm the compiled rules and the session
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def test_a_viewed_page_costs_a_constant_few_more_queries(org: Org) -> None:
    for url in (page("invoice_list", org), page("dashboard", org)):
        alone = _queries(org.client_for("owner"), url)
        viewed = _queries(viewing(org, "owner", "billing"), url)
        # The target, read again on each request (its rules are cached).
        assert viewed - alone <= 1, (url, alone, viewed)


def test_projects_named_only_in_the_targets_rules_are_listed(org: Org) -> None:
    """An owner has no rules: the projects a viewed member may read come from the
    member's rules (each then decided as both)."""
    member = MembershipFactory(organization=org.organization)
    chosen = ProjectFactory(organization=org.organization, name="chosen-one")
    ProjectFactory(organization=org.organization, name="other-one")
    allow(member, "projects:projects:list", scope=Rule.Scope.ORGANIZATION)
    policy = PolicyFactory(organization=org.organization)
    rule = RuleFactory(
        policy=policy, position=1, actions=["projects:projects:read"], scope=Rule.Scope.PROJECTS
    )
    rule.projects.add(chosen)
    PolicyAttachment.objects.create(policy=policy, organization=org.organization, membership=member)
    client = org.client_for("owner")
    assert client.post(start_url(org, member)).status_code == 302
    body = client.get(page("project_list", org)).content.decode()
    assert "chosen-one" in body and "other-one" not in body
