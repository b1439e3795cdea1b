from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit import events
from audit.integrity import verify_chain
from audit.models import AuditEvent
from organizations.models import Organization
from tests.factories import AuditEventFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def _aged(organization: Organization, *days_ago: int) -> None:
    now = timezone.now()
    for days in days_ago:
        AuditEventFactory(organization=organization, occurred_at=now - dt.timedelta(days=days))


def test_purge_deletes_what_each_organization_no_longer_keeps_and_says_how_many() -> None:
    short = OrganizationFactory(audit_retention_days=7)
    default = OrganizationFactory()  # 30 days
    _aged(short, 40, 10, 8, 1)
    _aged(default, 40, 31, 10, 1)
    out = StringIO()
    call_command("purge_audit", stdout=out)
    assert out.getvalue().strip().endswith("Deleted 5 audit events.")
    kept = AuditEvent.objects.exclude(action=events.AUDIT_PURGED.name)
    assert kept.filter(organization=short).count() == 1
    assert kept.filter(organization=default).count() == 2
    purged = AuditEvent.objects.get(organization=short, action=events.AUDIT_PURGED.name)
    assert purged.data["deleted"] == 3 and purged.actor_label == ""
    # What is left still verifies: a purge is not a removal out of order.
    assert verify_chain(short.pk).ok and verify_chain(default.pk).ok


def test_a_second_purge_finds_nothing_to_delete() -> None:
    _aged(OrganizationFactory(), 45, 2)
    call_command("purge_audit", stdout=StringIO())
    out = StringIO()
    call_command("purge_audit", stdout=out)
    assert "Deleted 0 audit events." in out.getvalue()


def test_purging_one_organization_leaves_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    one, other = OrganizationFactory(), OrganizationFactory()
    _aged(one, 50)
    _aged(other, 50)
    monkeypatch.setattr("audit.retention.BATCH", 1)  # several batches, one anchor each
    _aged(one, 49, 48)
    out = StringIO()
    call_command("purge_audit", "--organization", str(one.pk), "-v", "2", stdout=out)
    assert "Deleted 3 audit events." in out.getvalue()
    assert AuditEvent.objects.filter(organization=other).count() == 1
    assert verify_chain(one.pk).ok


def test_removing_old_events_outside_the_purge_is_detected() -> None:
    organization = OrganizationFactory()
    _aged(organization, 50, 40, 1)
    call_command("purge_audit", stdout=StringIO())
    survivor = AuditEvent.objects.filter(organization=organization).order_by("sequence").first()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [survivor.pk])
    result = verify_chain(organization.pk)
    assert not result.ok and result.sequence == survivor.sequence
