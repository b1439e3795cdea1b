"""The organization dashboard: its recent activity is part of the audit trail."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Membership, Project
from organizations.services.organizations import organization_bump_authz_version
from policies.models import Policy, Rule
from tests.conftest import Org
from tests.factories import AuditEventFactory, MembershipFactory, ProjectFactory, grant

pytestmark = pytest.mark.django_db

INVITEE = "invitee-7f3a@example.com"


def _dashboard(org: Org) -> str:
    return reverse("organizations:dashboard", args=[org.organization.pk])


def _event(org: Org) -> None:
    AuditEventFactory(
        organization=org.organization, action="iam.invitation.created", target_label=INVITEE
    )


def _audit_reader(org: Org) -> Client:
    """A read-only user who is also granted the audit trail."""
    reader = MembershipFactory(organization=org.organization)
    for name in ("ReadOnlyAccess", "AuditReader"):
        reader.policy_attachments.create(
            policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name=name),
            organization=org.organization,
        )
    client = Client()
    client.force_login(reader.user)
    return client


@pytest.mark.parametrize("who", ["readonly", "tech", "billing"])
def test_members_who_may_not_read_the_trail_see_no_recent_activity(org: Org, who: str) -> None:
    _event(org)
    client = org.client_for(who)
    assert client.get(reverse("audit:event_list", args=[org.organization.pk])).status_code == 403
    with CaptureQueriesContext(connection) as queries:
        response = client.get(_dashboard(org))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Recent activity" not in body and INVITEE not in body
    table = AuditEvent._meta.db_table
    assert not [q for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]


def test_owners_and_audit_readers_see_recent_activity(org: Org) -> None:
    _event(org)
    for client in (org.client_for("owner"), _audit_reader(org)):
        body = client.get(_dashboard(org)).content.decode()
        assert "Recent activity" in body and INVITEE in body
        assert reverse("audit:event_list", args=[org.organization.pk]) in body


# ------------------------------------------------- a home for project-only members


def _signed_in(member: Membership) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def _project_member(org: Org) -> tuple[Membership, Project, Project]:
    """A member granted reading and instances in `web` only, and nothing at organization
    level; `db` is another project of the organization."""
    web = ProjectFactory(organization=org.organization, name="web")
    db = ProjectFactory(organization=org.organization, name="db")
    member = MembershipFactory(organization=org.organization)
    grant(member, actions=["ProjectsReadOnly", "InstancesReadOnly"], projects=[web])
    return member, web, db


def test_a_member_with_only_project_grants_lands_on_their_projects(org: Org) -> None:
    member, web, db = _project_member(org)
    client = _signed_in(member)
    response = client.get(reverse("organizations:home"), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(_dashboard(org), 302)]
    body = response.content.decode()
    assert "Your projects" in body
    rows = [(p.name, [a.name for a in actions]) for p, actions in response.context["rows"]]
    assert rows == [
        ("web", ["projects:projects:read", "compute:instances:list", "compute:instances:read"])
    ]
    detail = reverse("organizations:project_detail", args=[org.organization.pk, web.pk])
    assert detail in body and str(db.pk) not in body
    assert client.get(detail).status_code == 200


def test_the_member_home_lists_every_project_when_grants_cover_all_projects(org: Org) -> None:
    ProjectFactory(organization=org.organization, name="web")
    member = MembershipFactory(organization=org.organization)
    grant(member, actions=["DNSReadOnly"], scope=Rule.Scope.ALL_PROJECTS)
    response = _signed_in(member).get(_dashboard(org))
    assert response.status_code == 200
    assert {p.name for p, _ in response.context["rows"]} == {"default", "web"}
    # Without projects:projects:read the names link to no page that would refuse them.
    assert "/projects/" not in response.content.decode().split('id="main"', 1)[1]


def test_a_member_granted_only_other_organization_pages_lands_on_a_home_too(org: Org) -> None:
    member = MembershipFactory(organization=org.organization)
    grant(member, actions=["AuditReader"])
    response = _signed_in(member).get(_dashboard(org))
    assert response.status_code == 200
    body = response.content.decode()
    assert "No policy lets you do anything in a project" in body
    assert reverse("audit:event_list", args=[org.organization.pk]) in body  # the menu


def test_a_member_granted_nothing_still_gets_the_no_permissions_page(org: Org) -> None:
    response = _signed_in(MembershipFactory(organization=org.organization)).get(_dashboard(org))
    assert response.status_code == 403
    assert "You have no permissions in" in response.content.decode()


def test_a_suspended_member_with_project_grants_is_refused(org: Org) -> None:
    member, _, _ = _project_member(org)
    Membership.objects.filter(pk=member.pk).update(status=Membership.Status.SUSPENDED)
    assert _signed_in(member).get(_dashboard(org)).status_code == 403


def test_the_member_home_runs_the_same_queries_for_2_or_200_projects(
    org: Org, django_assert_max_num_queries
) -> None:
    member, _, _ = _project_member(org)
    client = _signed_in(member)
    with django_assert_max_num_queries(12) as small:
        client.get(_dashboard(org))
    grant(
        member,
        actions=["ProjectsReadOnly"],
        projects=ProjectFactory.create_batch(198, organization=org.organization),
    )
    organization_bump_authz_version(organization=org.organization)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(_dashboard(org))
    assert response.context["page"].paginator.count == 199


def test_billing_dashboard_offers_no_link_billing_may_not_open(org: Org) -> None:
    body = org.client_for("billing").get(_dashboard(org)).content.decode()
    assert "View users" not in body and "View projects" not in body
