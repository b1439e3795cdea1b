"""The fixed-window rate limit counted in the database: one atomic statement per count,
one row per bucket, old windows purged now and then."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction

from iamportal import ratelimit
from iamportal.models import RateCounter
from iamportal.ratelimit import count, within_limit

pytestmark = pytest.mark.django_db

NOW = 1_000_000_000.0  # 40 s into its minute (999_999_960 is a multiple of 60)


@pytest.fixture(autouse=True)
def _no_purge(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process already purged: counts issue their one statement only (tests that
    check the purge run it, or move the schedule back)."""
    monkeypatch.setattr(ratelimit, "_next_purge", math.inf)


def test_a_key_is_refused_past_its_limit_until_the_next_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_000_000.0)
    assert [within_limit("a", limit=2, window=60) for _ in range(3)] == [True, True, False]
    assert within_limit("b", limit=2, window=60)  # each key counts on its own
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_000_060.0)
    assert within_limit("a", limit=2, window=60)


def test_a_count_is_one_statement_and_tells_when_its_window_ends(
    django_assert_num_queries: Any,
) -> None:
    with django_assert_num_queries(1):
        assert count("api:key:1", window_seconds=60, now=NOW) == (1, 20)
    with django_assert_num_queries(1):
        assert count("api:key:1", window_seconds=60, now=NOW + 19.5) == (2, 1)


def test_the_count_lives_in_the_database_for_every_process() -> None:
    """Nothing of the count stays in the process: what one process counted, the next
    statement (from any process) counts on."""
    count("shared", window_seconds=60, now=NOW)
    count("shared", window_seconds=60, now=NOW + 1)
    row = RateCounter.objects.get(bucket="shared")
    assert (row.count, row.period_end) == (2, 1_000_000_020)
    assert count("shared", window_seconds=60, now=NOW + 2) == (3, 18)


def test_a_new_window_starts_again_at_one_on_the_same_row() -> None:
    assert [count("b", window_seconds=60, now=NOW)[0] for _ in range(3)] == [1, 2, 3]
    assert count("b", window_seconds=60, now=NOW + 20) == (1, 60)  # the next minute
    assert count("b", window_seconds=60, now=NOW + 505) == (1, 55)  # minutes later
    assert list(RateCounter.objects.values_list("bucket", "count")) == [("b", 1)]


def test_buckets_may_use_windows_of_different_lengths() -> None:
    assert count("minute", window_seconds=60, now=NOW) == (1, 20)
    assert count("hour", window_seconds=3600, now=NOW) == (1, 800)
    assert count("hour", window_seconds=3600, now=NOW + 60) == (2, 740)


def test_the_purge_removes_ended_windows_and_keeps_recent_ones() -> None:
    count("current", window_seconds=60, now=NOW)
    count("just-ended", window_seconds=60, now=NOW - 60)  # ended 40 s ago: within grace
    count("old", window_seconds=60, now=NOW - 120)  # ended 100 s ago
    count("old-hour", window_seconds=3600, now=NOW - 7200)
    count("this-hour", window_seconds=3600, now=NOW - 1800)  # began long ago, still runs
    assert ratelimit.purge(NOW) == 2
    assert set(RateCounter.objects.values_list("bucket", flat=True)) == {
        "current",
        "just-ended",
        "this-hour",
    }


def test_a_process_purges_at_most_once_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    count("old", window_seconds=60, now=NOW - 600)
    monkeypatch.setattr(ratelimit, "_next_purge", 0.0)  # a fresh process: due now
    count("a", window_seconds=60, now=NOW)
    assert not RateCounter.objects.filter(bucket="old").exists()
    assert ratelimit._next_purge > ratelimit.time.monotonic() + 50

    count("old", window_seconds=60, now=NOW - 600)
    count("a", window_seconds=60, now=NOW)  # purged a moment ago: not again
    assert RateCounter.objects.filter(bucket="old").exists()


def test_counting_inside_a_transaction_leaves_it_usable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Even a purge that fails (here: broken SQL) is rolled back to its savepoint and only
    logged; the caller's transaction carries on."""
    monkeypatch.setattr(ratelimit, "_PURGE", "DELETE FROM no_such_table WHERE 1 < %s")
    monkeypatch.setattr(ratelimit, "_next_purge", 0.0)
    with transaction.atomic(), caplog.at_level(logging.WARNING, logger=ratelimit.__name__):
        assert count("t", window_seconds=60, now=NOW) == (1, 20)
        assert count("t", window_seconds=60, now=NOW) == (2, 20)
        assert RateCounter.objects.get(bucket="t").count == 2
    assert "Purging old rate-limit counts failed" in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_counts_are_exact() -> None:
    """Threads on their own connections count at once: every count is handed out once."""
    threads, each = 8, 25
    barrier = threading.Barrier(threads)
    seen: list[int] = []

    def run() -> None:
        try:
            barrier.wait()
            seen.extend(count("race", window_seconds=3600, now=NOW)[0] for _ in range(each))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(seen) == list(range(1, threads * each + 1))
    assert connection.vendor == "postgresql"


@pytest.mark.postgres
def test_postgresql_keeps_the_counters_out_of_its_write_ahead_log() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relpersistence FROM pg_class WHERE relname = 'iamportal_ratecounter'"
        )
        assert cursor.fetchone() == ("u",)  # unlogged: a count never waits for the disk


# ------------------------------------------------------------------------------ spend


@pytest.fixture
def fresh_tallies(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No tallies, and a monotonic clock the test moves (`clock[0]`)."""
    ratelimit.forget_tallies()
    clock = [100.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    return clock


def _spend(bucket: str, limit: int) -> bool:
    return ratelimit.spend(bucket, limit=limit, window_seconds=60, now=NOW)[0]


def test_spend_is_exact_for_small_limits(fresh_tallies: list[float]) -> None:
    assert [_spend("s", 3) for _ in range(5)] == [True, True, True, False, False]


def test_spend_asks_the_database_less_often_far_from_the_limit(
    fresh_tallies: list[float], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):  # a bucket's first use in the window syncs
        assert _spend("far", 1000)
    with django_assert_num_queries(0):  # 1 of 1000 known: up to 999 / 8 uses kept
        for _ in range(124):
            assert _spend("far", 1000)
    with django_assert_num_queries(1):  # 125 unsent x 8 > 999 left: sync
        assert _spend("far", 1000)
    assert RateCounter.objects.get(bucket="far").count == 126


def test_spend_syncs_at_least_once_a_second(
    fresh_tallies: list[float], django_assert_num_queries: Any
) -> None:
    _spend("t", 1000)
    with django_assert_num_queries(0):
        _spend("t", 1000)
    fresh_tallies[0] += ratelimit.SYNC_SECONDS
    with django_assert_num_queries(1):
        _spend("t", 1000)
    assert RateCounter.objects.get(bucket="t").count == 3


def test_spend_sees_other_processes_uses(fresh_tallies: list[float]) -> None:
    assert _spend("o", 20)
    count("o", window_seconds=60, now=NOW, uses=18)  # another process' uses, sent
    # Unsent 1 x 8 > 19 left? No; 2 x 8 > 19? No; 3 x 8 > 19: sync, 1 + 18 + 3 = 22 > 20.
    assert [_spend("o", 20) for _ in range(3)] == [True, True, False]


def test_spend_refuses_without_asking_when_its_own_uses_spent_the_limit(
    fresh_tallies: list[float], django_assert_num_queries: Any
) -> None:
    for _ in range(2):
        assert _spend("r", 2)
    with django_assert_num_queries(0):
        assert not _spend("r", 2)
    fresh_tallies[0] += ratelimit.SYNC_SECONDS  # refused uses are sent with the next sync
    assert not _spend("r", 2)
    assert RateCounter.objects.get(bucket="r").count == 4


def test_spend_keeps_unsent_uses_when_the_database_fails(fresh_tallies: list[float]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ratelimit, "_COUNT", "SELECT no_such_column FROM iamportal_ratecounter")
        with pytest.raises(DatabaseError), transaction.atomic():
            _spend("f", 5)
    assert _spend("f", 5)  # the failed use is sent with this one
    assert RateCounter.objects.get(bucket="f").count == 2
