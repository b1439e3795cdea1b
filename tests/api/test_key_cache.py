"""Each process keeps the API keys it looked up (`settings.API_KEY_CACHE_SECONDS`), and
drops an organization's keys when any process bumps its authorization version: LISTEN /
NOTIFY on PostgreSQL (iamportal.invalidation). Without PostgreSQL nothing is kept."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from iamportal import invalidation
from organizations.models import APIKey
from organizations.services import api_keys
from organizations.services.api_keys import api_key_authenticate, api_key_delete
from organizations.services.organizations import (
    _BUMP_AND_NOTIFY,
    organization_bump_authz_version,
)
from organizations.services.security import organization_update_security
from tests.api.conftest import API, key_token
from tests.conftest import Org

CALL = "/me"


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def cached(settings: Any) -> Iterator[None]:
    """The cache on, with this process's listener connected to the test database."""
    settings.API_KEY_CACHE_SECONDS = 10
    api_keys._cached_keys.clear()
    assert eventually(lambda: invalidation.listening() is not None), "listener not connected"
    yield
    invalidation.stop_listening()  # before the test database is dropped
    api_keys._cached_keys.clear()


def other_connection() -> psycopg.Connection[Any]:
    """Another database session, as another process of the console would hold."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor == "postgresql", reason="the case without PostgreSQL")
def test_without_postgresql_every_request_looks_its_key_up(
    org: Org, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.API_KEY_CACHE_SECONDS = 10
    api = API(key_token(org.owner, org.owner))
    assert api.get(CALL).status_code == 200
    with django_assert_num_queries(1):
        assert api.get(CALL).status_code == 200
    assert invalidation.listening() is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_known_key_costs_no_query(org: Org, cached: None, django_assert_num_queries: Any) -> None:
    api = API(key_token(org.owner, org.owner))
    assert api.get(CALL).status_code == 200
    with django_assert_num_queries(0):
        assert api.get(CALL).status_code == 200
    # Unknown keys are never kept: junk cannot fill the cache.
    junk = API("IAMKNOSUCHKEY0000.abcdefghijklmnopqrstuvwx")
    for _ in range(2):
        with django_assert_num_queries(1):
            assert junk.get(CALL).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_revocation_in_this_process_is_refused_on_the_next_call(org: Org, cached: None) -> None:
    token = key_token(org.owner, org.owner)
    api = API(token)
    assert api.get(CALL).status_code == 200
    api_key = APIKey.objects.get(access_key=token.partition(".")[0])
    api_key_delete(api_key=api_key, actor=org.owner.user)
    assert api.get(CALL).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_revocation_committed_by_another_process_is_heard(org: Org, cached: None) -> None:
    api = API(key_token(org.owner, org.owner))
    assert api.get(CALL).status_code == 200
    with other_connection() as other, other.transaction():
        other.execute(
            "DELETE FROM organizations_apikey WHERE organization_id = %s", [org.organization.pk]
        )
        other.execute(
            _BUMP_AND_NOTIFY,
            [org.organization.pk, invalidation.CHANNEL, str(org.organization.pk)],
        )
    assert eventually(lambda: api.get(CALL).status_code == 401, seconds=3)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_bump_drops_nothing(
    org: Org, cached: None, django_assert_num_queries: Any
) -> None:
    api = API(key_token(org.owner, org.owner))
    assert api.get(CALL).status_code == 200
    with pytest.raises(RuntimeError), transaction.atomic():
        organization_bump_authz_version(organization=org.organization)
        raise RuntimeError
    time.sleep(0.3)  # time for a notification, had one been sent
    with django_assert_num_queries(0):
        assert api.get(CALL).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_new_maximum_key_lifetime_is_applied_at_once(org: Org, cached: None) -> None:
    token = key_token(org.owner, org.owner)
    APIKey.objects.filter(access_key=token.partition(".")[0]).update(
        created_at=timezone.now() - datetime.timedelta(days=40)
    )
    api = API(token)
    assert api.get(CALL).status_code == 200
    organization_update_security(
        organization=org.organization, actor=org.owner.user, api_key_max_lifetime_days=30
    )
    assert api.get(CALL).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_keys_are_not_served_while_the_listener_is_away(
    org: Org, cached: None, django_assert_num_queries: Any
) -> None:
    """Notifications sent while the listener reconnects are lost: what was kept before is
    never served again, and nothing is kept until it listens again."""
    api = API(key_token(org.owner, org.owner))
    assert api.get(CALL).status_code == 200
    generation = invalidation.listening()
    with other_connection() as other:
        other.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [invalidation.APPLICATION_NAME],
        )
    assert eventually(lambda: invalidation.listening() not in (None, generation))
    with django_assert_num_queries(1):
        assert api.get(CALL).status_code == 200
    with django_assert_num_queries(0):
        assert api.get(CALL).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_kept_key_is_looked_up_again_after_its_seconds(
    org: Org, cached: None, django_assert_num_queries: Any
) -> None:
    api = API(key_token(org.owner, org.owner))
    assert api.get(CALL).status_code == 200
    (entry,) = api_keys._cached_keys.values()
    entry.expires = time.monotonic() - 1
    with django_assert_num_queries(1):
        assert api.get(CALL).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_last_use_is_still_written_once_a_minute(
    org: Org, cached: None, django_assert_num_queries: Any
) -> None:
    token = key_token(org.owner, org.owner)
    access_key, _, secret = token.partition(".")
    start = timezone.now()
    with django_assert_num_queries(2):  # the lookup and the last use
        assert api_key_authenticate(access_key=access_key, secret=secret, ip="10.0.0.1", now=start)
    with django_assert_num_queries(0):
        later = start + datetime.timedelta(seconds=59)
        assert api_key_authenticate(access_key=access_key, secret=secret, now=later)
    with django_assert_num_queries(1):  # the kept row, and the minute's write
        later = start + datetime.timedelta(seconds=61)
        assert api_key_authenticate(access_key=access_key, secret=secret, ip="10.0.0.2", now=later)
    assert APIKey.objects.get(access_key=access_key).last_used_ip == "10.0.0.2"
