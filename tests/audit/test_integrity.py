from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction

from audit import events, integrity
from audit.integrity import verify_chain
from audit.models import AuditChain, AuditEvent
from audit.services import record
from organizations.models import Organization
from tests.conftest import Org
from tests.factories import OrganizationFactory


def _chain(organization: Organization, count: int) -> list[AuditEvent]:
    return [
        record(action=events.PROJECT_CREATED, organization=organization, target_label=f"p{n}")
        for n in range(count)
    ]


def _raw(sql: str, *params: object) -> None:
    """Tamper like someone with database access would: behind the model's back."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_an_untouched_chain_verifies(org: Org) -> None:
    _chain(org.organization, 5)
    result = verify_chain(org.organization.pk)
    assert result.ok and result.checked == 5


@pytest.mark.django_db
def test_an_altered_event_is_the_first_broken_link(org: Org) -> None:
    chain = _chain(org.organization, 5)
    _raw("UPDATE audit_auditevent SET target_label = 'p9' WHERE id = %s", chain[2].pk)
    result = verify_chain(org.organization.pk)
    assert not result.ok
    assert (result.sequence, result.event_id, result.checked) == (3, str(chain[2].public_id), 2)
    assert "altered" in result.problem


@pytest.mark.django_db
def test_an_event_removed_from_the_middle_is_reported(org: Org) -> None:
    chain = _chain(org.organization, 5)
    _raw("DELETE FROM audit_auditevent WHERE id = %s", chain[1].pk)
    result = verify_chain(org.organization.pk)
    assert not result.ok and result.sequence == 2
    assert "#2 is missing" in result.problem


@pytest.mark.django_db
def test_removing_the_newest_or_oldest_event_is_detected(org: Org) -> None:
    chain = _chain(org.organization, 4)
    _raw("DELETE FROM audit_auditevent WHERE id = %s", chain[-1].pk)
    newest = verify_chain(org.organization.pk)
    assert not newest.ok and newest.sequence == 4 and "newest" in newest.problem
    other = OrganizationFactory()
    first = _chain(other, 3)[0]
    _raw("DELETE FROM audit_auditevent WHERE id = %s", first.pk)
    oldest = verify_chain(other.pk)
    assert not oldest.ok and oldest.sequence == 1


@pytest.mark.django_db
def test_a_rehashed_forgery_still_breaks_the_next_link(org: Org) -> None:
    """Recomputing the altered row's own hash is not enough: the next event names it."""
    from audit.chain import HASHED_FIELDS, content_hash

    chain = _chain(org.organization, 3)
    _raw("UPDATE audit_auditevent SET target_label = 'forged' WHERE id = %s", chain[0].pk)
    row = AuditEvent.objects.values(*HASHED_FIELDS).get(pk=chain[0].pk)
    _raw("UPDATE audit_auditevent SET hash = %s WHERE id = %s", content_hash(row), chain[0].pk)
    result = verify_chain(org.organization.pk)
    assert not result.ok and result.sequence == 2 and "previous" in result.problem


@pytest.mark.django_db
def test_verify_audit_command_reports_each_chain(org: Org) -> None:
    _chain(org.organization, 3)
    out = StringIO()
    call_command("verify_audit", "--organization", str(org.organization.pk), stdout=out)
    assert "OK" in out.getvalue() and "3 events checked" in out.getvalue()
    victim = AuditEvent.objects.filter(organization=org.organization).order_by("sequence")[1]
    _raw("UPDATE audit_auditevent SET ip = '10.9.9.9' WHERE id = %s", victim.pk)
    out = StringIO()
    with pytest.raises(CommandError, match="1 audit chain broken"):
        call_command("verify_audit", stdout=out)
    assert f"BROKEN  Acme [{org.organization.pk}]: broken at event #2" in out.getvalue()
    assert str(victim.public_id) in out.getvalue()
    with pytest.raises(CommandError, match="No organization"):
        call_command("verify_audit", "--organization", "nope", stdout=StringIO())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_writers_of_one_organization_keep_one_valid_chain() -> None:
    """Writers in parallel transactions queue on the chain head: no fork, no gap."""
    organization = OrganizationFactory()
    writers, per_writer = 8, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with transaction.atomic():
                    record(
                        action=events.PROJECT_UPDATED,
                        organization=organization,
                        target_label=f"w{n}-{i}",
                    )
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sequences = list(
        AuditEvent.objects.filter(organization=organization)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, writers * per_writer + 1))
    assert AuditChain.objects.get(key=str(organization.pk)).sequence == writers * per_writer
    assert verify_chain(organization.pk).ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_write_committed_while_verifying_is_not_a_broken_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The head and the walk read one snapshot: a writer committing between the two
    reads must not look like an event added behind the recorder's back."""
    organization = OrganizationFactory()
    _chain(organization, 2)

    def write_elsewhere() -> None:
        try:
            with transaction.atomic():
                record(action=events.PROJECT_UPDATED, organization=organization)
        finally:
            connections.close_all()

    class WriterBetweenReads:
        """Stands in for `AuditEvent` in the verifier: read right after the head is."""

        @property
        def objects(self) -> object:
            writer = threading.Thread(target=write_elsewhere)
            writer.start()
            writer.join()
            return AuditEvent.objects

    monkeypatch.setattr(integrity, "AuditEvent", WriterBetweenReads())
    verification = verify_chain(organization.pk)
    assert verification.ok, verification.summary
    assert verification.checked == 2
    monkeypatch.undo()
    assert verify_chain(organization.pk).checked == 3
