"""The API's rate limits: per key and per source address, counted in the database (at
most one statement per limit, none while far from it), 429 with `Retry-After`. The suite
runs with the limits off (iamportal/test_settings.py); each test here turns on the ones
it checks."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from iamportal import api_ratelimit, ratelimit
from iamportal.models import RateCounter
from organizations.models import APIKey, Group
from tests.api.conftest import API, key_token
from tests.conftest import Org

NOW = 1_000_000_000.0  # 40 s into its minute (999_999_960 is a multiple of 60)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The limiter's clock, frozen at `clock[0]`; tests move it."""
    now = [NOW]
    monkeypatch.setattr(api_ratelimit, "_now", lambda: now[0])
    return now


@pytest.fixture(autouse=True)
def _no_purge(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process already purged old windows, and starts without tallies."""
    monkeypatch.setattr(ratelimit, "_next_purge", math.inf)
    ratelimit.forget_tallies()


def assert_limited(response: Any, scope: str, limit: int) -> None:
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"] == {"scope": scope, "limit": limit, "window_seconds": 60}
    assert 1 <= int(response["Retry-After"]) <= 60


def test_a_key_over_its_limit_is_429_and_another_key_is_not(
    org: Org, settings: Any, clock: list[float]
) -> None:
    settings.API_RATE_PER_KEY = 3
    api, other = API(key_token(org.owner, org.owner)), API(key_token(org.tech, org.tech))
    assert [api.get("/me").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/me")
    assert_limited(limited, "key", 3)
    # 1_000_000_000 s is 40 s into its minute: the next window begins in 20 s.
    assert limited["Retry-After"] == "20"
    assert other.get("/me").status_code == 200  # same address, its own key count


def test_a_limited_operation_does_not_run(org: Org, settings: Any, clock: list[float]) -> None:
    settings.API_RATE_PER_KEY = 1
    api = API(key_token(org.owner, org.owner))
    assert api.get("/me").status_code == 200
    assert_limited(api.post("/groups", {"name": "ops"}), "key", 1)
    assert not Group.objects.filter(name="ops").exists()


def test_the_address_limit_spans_keys_and_applies_before_authentication(
    org: Org, settings: Any, clock: list[float]
) -> None:
    settings.API_RATE_PER_IP = 4
    owner, tech = API(key_token(org.owner, org.owner)), API(key_token(org.tech, org.tech))
    here = {"REMOTE_ADDR": "198.51.100.7"}
    assert owner.get("/me", meta=here).status_code == 200
    assert tech.get("/me", meta=here).status_code == 200
    assert API("IAMKnope.bad").get("/me", meta=here).status_code == 401  # a bad key counts
    assert API().get("/me", meta=here).status_code == 401  # so does no key at all
    assert_limited(owner.get("/me", meta=here), "ip", 4)
    assert_limited(API("IAMKnope.bad").get("/me", meta=here), "ip", 4)
    assert_limited(API().get("/no-such-path", meta=here), "ip", 4)
    # Another address is counted on its own.
    assert owner.get("/me", meta={"REMOTE_ADDR": "198.51.100.8"}).status_code == 200


def test_the_count_starts_again_in_the_next_window(
    org: Org, settings: Any, clock: list[float]
) -> None:
    settings.API_RATE_PER_KEY = 2
    api = API(key_token(org.owner, org.owner))
    assert [api.get("/me").status_code for _ in range(3)] == [200, 200, 429]
    clock[0] += 19
    assert api.get("/me")["Retry-After"] == "1"
    clock[0] += 1  # the next minute
    assert [api.get("/me").status_code for _ in range(3)] == [200, 200, 429]


def test_zero_turns_a_limit_off(org: Org, settings: Any) -> None:
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_IP = 0
    api = API(key_token(org.owner, org.owner))
    assert {api.get("/me").status_code for _ in range(5)} == {200}
    assert not RateCounter.objects.exists()


def test_the_counts_are_shared_through_the_database(
    org: Org, settings: Any, clock: list[float]
) -> None:
    """Two clients (as two workers would serve them) spend one count, and the count is the
    key's one row in the database, where any process counts on it."""
    settings.API_RATE_PER_KEY = 4
    token = key_token(org.owner, org.owner)
    first, second = API(token), API(token)
    assert first.get("/me").status_code == second.get("/me").status_code == 200
    assert first.get("/me").status_code == second.get("/me").status_code == 200
    assert_limited(second.get("/me"), "key", 4)
    assert_limited(first.get("/me"), "key", 4)  # refused, and still counted

    key = APIKey.objects.get(bearer_membership=org.owner)
    row = RateCounter.objects.get()
    # The two refused requests were refused by this process' own tally (it knew the
    # limit was spent), so they are not sent yet: the next sync adds them.
    assert (row.bucket, row.count, row.period_end) == (f"api:key:{key.pk}", 4, 1_000_000_020)


def test_a_count_from_another_process_is_seen_near_the_limit(
    org: Org, settings: Any, clock: list[float]
) -> None:
    settings.API_RATE_PER_KEY = 10
    api = API(key_token(org.owner, org.owner))
    key = APIKey.objects.get(bearer_membership=org.owner)
    assert api.get("/me").status_code == 200
    # Another worker served this key 8 requests meanwhile.
    ratelimit.count(f"api:key:{key.pk}", window_seconds=60, now=clock[0], uses=8)
    # 1 + 8 of 10: this process asks the database as soon as what it knew was left (9)
    # is within reach, so the 11th request of the key is refused.
    assert [api.get("/me").status_code for _ in range(2)] == [200, 429]


def test_far_from_the_limit_a_request_costs_no_statement(
    org: Org, settings: Any, clock: list[float]
) -> None:
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_IP = 0
    api = API(key_token(org.owner, org.owner))
    api.get("/me")  # warm up whatever a first request reads once
    with CaptureQueriesContext(connection) as unlimited:
        assert api.get("/me").status_code == 200
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_IP = 10_000
    with CaptureQueriesContext(connection) as first:
        assert api.get("/me").status_code == 200
    assert len(first) == len(unlimited) + 2  # first use in the window: both limits sync
    with CaptureQueriesContext(connection) as later:
        assert api.get("/me").status_code == 200
    assert len(later) == len(unlimited)
    assert not any("iamportal_ratecounter" in query["sql"] for query in later)


def test_check_key_and_check_address_are_one_query_each(
    org: Org, settings: Any, clock: list[float], django_assert_num_queries: Any
) -> None:
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_IP = 100
    key_token(org.owner, org.owner)
    key = APIKey.objects.get(bearer_membership=org.owner)
    request = RequestFactory().get("/api/v1/me", REMOTE_ADDR="198.51.100.7")
    with django_assert_num_queries(1):
        api_ratelimit.check_key(key)
    with django_assert_num_queries(1):
        api_ratelimit.check_address(request)
    assert dict(RateCounter.objects.values_list("bucket", "count")) == {
        f"api:key:{key.pk}": 1,
        "api:ip:198.51.100.7": 1,
    }
