"""The organization dashboard: its recent activity is part of the audit trail."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from policies.models import Policy
from tests.conftest import Org
from tests.factories import AuditEventFactory, MembershipFactory

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
