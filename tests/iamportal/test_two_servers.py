"""Two servers on one database hold one truth (issue #15, item 5): a policy detached
through one is denied on the very next request through the other; sessions, lock-outs
and the API's rate limits are shared. Each server is gunicorn with its own worker
process, as behind a load balancer."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from benchmarks.served import log_in, sign_in, start_gunicorn, stop_gunicorn
from organizations.models import Membership
from policies.models import PolicyAttachment, Rule
from tests.api.conftest import allow, key_token
from tests.conftest import Org
from tests.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PER_KEY = 8  # the API's limit a minute per key on both servers


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """Two gunicorn servers (one worker each) on the test database; their ports."""
    started = []
    try:
        for _ in range(2):
            started.append(
                start_gunicorn(
                    connection.settings_dict["NAME"],
                    settings="iamportal.settings",
                    workers=1,
                    environment={"IAMPORTAL_API_RATE_PER_KEY": str(PER_KEY)},
                )
            )
        yield started[0][1], started[1][1]
    finally:
        for server, _ in started:
            stop_gunicorn(server)


def real_password(membership: Membership) -> str:
    """The servers run the project's settings: a password hashed as they hash (the suite
    hashes with MD5, which they do not accept)."""
    hasher = PBKDF2PasswordHasher()  # Django's default, which the servers use
    membership.user.password = hasher.encode(PASSWORD, hasher.salt())
    membership.user.save(update_fields=["password"])
    return membership.user.email


def get(port: int, path: str, jar: dict[str, str] | None = None, token: str = "") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (jar or {}).items())}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def delete(port: int, path: str, token: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("DELETE", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    assert response.status in (200, 204), body
    return response.status


def test_a_detach_through_one_server_is_denied_through_the_other(
    org: Org, servers: tuple[int, int]
) -> None:
    one, two = servers
    member = MembershipFactory(organization=org.organization)
    allow(member, "billing:invoices:list", scope=Rule.Scope.ORGANIZATION)
    attachment = PolicyAttachment.objects.get(membership=member)
    invoices = f"/o/{org.organization.pk}/billing/"
    jar = sign_in(one, real_password(member), PASSWORD)  # one session, good on both servers
    assert get(two, invoices, jar) == 200  # the second server has it compiled and cached

    owner_key = key_token(org.owner, org.owner)
    delete(
        one,
        f"/api/v1/policies/{attachment.policy_id}/attachments/user/{member.user_id}",
        owner_key,
    )
    assert get(two, invoices, jar) == 403  # the very next request


def test_a_revoked_key_is_refused_by_the_other_server(org: Org, servers: tuple[int, int]) -> None:
    one, two = servers
    token = key_token(org.owner, org.owner)
    other = key_token(org.owner, org.owner)
    assert get(two, "/api/v1/me", token=token) == 200  # the second server keeps the key
    keys = json.loads(_body(one, "/api/v1/api-keys?mine=true", other))["items"]
    (revoked,) = [k for k in keys if token.startswith(k["access_key"])]
    delete(one, f"/api/v1/api-keys/{revoked['id']}", other)
    # The other process hears of it through NOTIFY within milliseconds of the commit.
    deadline = time.monotonic() + 2
    while get(two, "/api/v1/me", token=token) != 401:
        assert time.monotonic() < deadline, "the revoked key still works on the other server"
        time.sleep(0.01)


def _body(port: int, path: str, token: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    return response.read()


def test_a_lock_out_counts_failures_on_both_servers(org: Org, servers: tuple[int, int]) -> None:
    one, two = servers
    email = real_password(org.billing)
    statuses = [log_in(port, email, "wrong-password")[0] for port in (one, two, one, two)]
    assert statuses == [200] * 4
    assert log_in(two, email, "wrong-password")[0] == 429  # the fifth failure locks
    assert log_in(one, email, PASSWORD)[0] == 429  # on the other server too


def test_the_rate_limit_counts_requests_on_both_servers(org: Org, servers: tuple[int, int]) -> None:
    one, two = servers
    token = key_token(org.owner, org.owner)
    statuses = [get(port, "/api/v1/me", token=token) for port in (one, two) * (PER_KEY // 2)]
    assert statuses == [200] * PER_KEY
    assert get(one, "/api/v1/me", token=token) == 429
    assert get(two, "/api/v1/me", token=token) == 429
