"""Verify a chain: recompute every hash and check every link, oldest first."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from audit.chain import HASHED_FIELDS, content_hash
from audit.models import AuditChain, AuditEvent

CHUNK = 2000


@dataclass(frozen=True)
class Verification:
    """The outcome: `ok`, how many events were checked, and the first broken link."""

    ok: bool
    checked: int
    sequence: int | None = None  # where the chain breaks (the event's place in it)
    event_id: str = ""  # public id of the offending event, when it still exists
    problem: str = ""

    @property
    def summary(self) -> str:
        if self.ok:
            return f"intact ({self.checked} events checked)"
        where = f"at event #{self.sequence}" if self.sequence is not None else ""
        return f"broken {where}: {self.problem}".replace("  ", " ")


def verify_chain(organization_id: object) -> Verification:
    """Walk the chain of one organization (None: events without an organization).

    Detects an altered event (its hash no longer matches its content), a removed or
    inserted event (a gap in the sequence or a previous-hash mismatch), removed newest
    events (the chain head names a later event) and removed oldest events outside the
    retention purge (the first event does not follow the last purged one).

    The head and the events are read in one snapshot: a writer committing between the
    two reads would otherwise look like an event added behind the recorder's back.
    """
    # Inside a caller's transaction the isolation level can no longer change: the caller
    # chose its snapshot.
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _walk(organization_id)


def _walk(organization_id: object) -> Verification:
    key = AuditChain.key_for(organization_id)
    head = AuditChain.objects.filter(key=key).first()
    rows = (
        AuditEvent.objects.filter(organization_id=organization_id or None)
        .order_by("sequence")
        .values("hash", *HASHED_FIELDS)
    )
    expected_sequence = (head.purged_sequence if head else 0) + 1
    expected_prev = head.purged_hash if head else ""
    checked = 0
    for row in rows.iterator(chunk_size=CHUNK):
        sequence = row["sequence"]
        public_id = str(row["public_id"])
        if sequence != expected_sequence:
            if sequence > expected_sequence:
                missing = f"#{expected_sequence}" + (
                    f"-#{sequence - 1}" if sequence - 1 > expected_sequence else ""
                )
                problem = f"event {missing} is missing (removed out of order)"
            else:
                problem = "an event was inserted out of order"
            return Verification(False, checked, expected_sequence, public_id, problem)
        if row["prev_hash"] != expected_prev:
            problem = "its previous-hash does not match the event before it"
            return Verification(False, checked, sequence, public_id, problem)
        if content_hash(row) != row["hash"]:
            problem = "its content was altered after it was recorded"
            return Verification(False, checked, sequence, public_id, problem)
        checked += 1
        expected_sequence, expected_prev = sequence + 1, row["hash"]
    if head is None:
        return Verification(True, checked)
    if head.sequence >= expected_sequence:
        missing = f"#{expected_sequence}" + (
            f"-#{head.sequence}" if head.sequence > expected_sequence else ""
        )
        problem = f"the newest event {missing} is missing (removed)"
        return Verification(False, checked, expected_sequence, "", problem)
    if head.sequence < expected_sequence - 1:
        problem = "events were added after the chain head (not through the recorder)"
        return Verification(False, checked, head.sequence + 1, "", problem)
    if head.last_hash != expected_prev:
        problem = "the newest event differs from the one the chain head recorded"
        return Verification(False, checked, head.sequence, "", problem)
    return Verification(True, checked)
