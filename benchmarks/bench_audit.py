"""What a filtered audit-trail page costs on a big trail: `make bench`.

On PostgreSQL, loads 1,000,000 events into one organization (and 100,000 into a
neighbour, so the organization column is not trivially selective) with one
`INSERT ... SELECT generate_series` statement each, then opens the trail page through
the real view (guard, filter form, selector, keyset page, template) for the common
filters: each is requested `ROUNDS` times and its p50/p95 printed, for the selector's
query alone, the HTMX fragment a filter change fetches, and the full page a shared link
opens. The last line is machine-readable, the full page's figures for the worst filter:

    BENCH audit events=<n> p50_ms=<n> p95_ms=<n>

On SQLite the same runs on 50,000 events (SQLite has no generate_series by default
here, and the figure that matters is PostgreSQL's); the line then says `db=sqlite`.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import pytest
from django.db import connection
from django.template import Template
from django.test import Client
from django.test.utils import _TestState
from django.urls import reverse

from audit import events
from audit.selectors import EventFilters, event_page, filter_events
from tests.factories import MembershipFactory, OrganizationFactory

PG_EVENTS = 1_000_000
NEIGHBOUR_EVENTS = 100_000
SQLITE_EVENTS = 50_000
ROUNDS = 30
USERS = 200
TARGETS = 5_000
SPAN_SECONDS = 30 * 24 * 3600  # the default retention: a month of events

# A plausible mix: sign-ins dominate, changes are rarer, denials and failures rarer still.
_WEIGHTS = {
    "auth.login.succeeded": 30,
    "auth.logout.succeeded": 15,
    "auth.login.failed": 3,
    "authz.access.denied": 4,
    "projects.project.updated": 10,
    "projects.project.created": 4,
    "iam.policy.updated": 6,
    "iam.policy.rule_added": 5,
    "iam.policy.attached": 5,
    "iam.group.member_added": 5,
    "iam.user.created": 3,
    "iam.api_key.created": 3,
    "billing.contact.updated": 1,
    "iam.policy.deleted": 1,
    "organization.organization.updated": 1,
    "audit.trail.exported": 1,
}


def _action_wheel() -> list[str]:
    wheel = [name for name, weight in _WEIGHTS.items() for _ in range(weight)]
    for name in wheel:
        events.get(name)  # every benchmarked name is a registered type
    return wheel


def _load(organization_id: str, count: int, users: list[str]) -> None:
    """One INSERT ... SELECT over generate_series: ~1M rows in well under a minute."""
    wheel = _action_wheel()
    sql = """
        INSERT INTO audit_auditevent (
            public_id, organization_id, occurred_at, action, service, result,
            actor_type, actor_id, actor_label, target_type, target_id, target_label,
            data, ip, user_agent, request_id, sequence, prev_hash, hash
        )
        SELECT
            gen_random_uuid(), %(org)s,
            now() - make_interval(secs => (%(count)s - i) * %(step)s),
            a.action, split_part(a.action, '.', 1),
            CASE a.action WHEN 'auth.login.failed' THEN 'failed'
                          WHEN 'authz.access.denied' THEN 'denied' ELSE 'success' END,
            CASE WHEN i %% 20 = 0 THEN '' ELSE 'user' END,
            CASE WHEN i %% 20 = 0 THEN '' ELSE (%(users)s::text[])[1 + (i * 7) %% %(nusers)s] END,
            CASE WHEN i %% 20 = 0 THEN ''
                 ELSE 'user' || ((i * 7) %% %(nusers)s) || '@example.com' END,
            'organizations.project', 't-' || ((i * 13) %% %(targets)s),
            'target ' || ((i * 13) %% %(targets)s),
            jsonb_build_object('before', jsonb_build_object('name', 'a' || i),
                               'after', jsonb_build_object('name', 'b' || i)),
            ('10.' || (i %% 250) || '.' || ((i / 250) %% 250) || '.1')::inet,
            'Mozilla/5.0 (X11; Linux x86_64) bench', md5(i::text),
            i, md5((i - 1)::text) || md5((i - 1)::text), md5(i::text) || md5(i::text)
        FROM generate_series(1, %(count)s) AS i
        CROSS JOIN LATERAL (
            SELECT (%(wheel)s::text[])[1 + (i * 31 + i / 7) %% %(nwheel)s] AS action
        ) AS a
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "org": organization_id,
                "count": count,
                "step": SPAN_SECONDS / count,
                "users": users,
                "nusers": len(users),
                "targets": TARGETS,
                "wheel": wheel,
                "nwheel": len(wheel),
            },
        )
        cursor.execute(
            "INSERT INTO audit_auditchain (key, organization_id, sequence, last_hash,"
            " purged_sequence, purged_hash) VALUES (%s, %s, %s, '', 0, '')",
            [organization_id, organization_id, count],
        )


def _load_sqlite(organization, count: int, users: list[str]) -> None:
    """SQLite: the ORM path in bulk would be refused (append-only), so raw rows."""
    wheel = _action_wheel()
    rows = []
    step = SPAN_SECONDS / count
    now = time.time()
    for i in range(1, count + 1):
        action = wheel[(i * 31 + i // 7) % len(wheel)]
        system = i % 20 == 0
        rows.append(
            (
                uuid.uuid4().hex,
                organization.pk.hex,
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - (count - i) * step)),
                action,
                action.split(".")[0],
                events.get(action).result,
                "" if system else "user",
                "" if system else users[(i * 7) % len(users)],
                "" if system else f"user{(i * 7) % len(users)}@example.com",
                "organizations.project",
                f"t-{(i * 13) % TARGETS}",
                f"target {(i * 13) % TARGETS}",
                '{"before": {"name": "a"}, "after": {"name": "b"}}',
                "10.0.0.1",
                "bench",
                "",
                i,
                "",
                "0" * 64,
            )
        )
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO audit_auditevent (public_id, organization_id, occurred_at, action,"
            " service, result, actor_type, actor_id, actor_label, target_type, target_id,"
            " target_label, data, ip, user_agent, request_id, sequence, prev_hash, hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def _aware(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M").replace(tzinfo=dt.UTC)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _emit(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@pytest.mark.django_db
def test_filtered_pages_of_a_million_events(
    benchmark, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres = connection.vendor == "postgresql"
    count = PG_EVENTS if postgres else SQLITE_EVENTS
    owner = MembershipFactory(is_owner=True)
    organization = owner.organization
    neighbour = OrganizationFactory()
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    started = time.perf_counter()
    if postgres:
        _load(str(organization.pk), count, users)
        _load(str(neighbour.pk), NEIGHBOUR_EVENTS, users)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
    else:
        _load_sqlite(organization, count, users)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    load_s = time.perf_counter() - started

    client = Client()
    client.force_login(owner.user)
    url = reverse("audit:event_list", args=[organization.pk])
    deep = event_page(
        filter_events(organization, EventFilters()).filter(sequence__lte=count // 2), size=1
    )
    week_ago = (time.time() - 14 * 24 * 3600, time.time() - 13 * 24 * 3600)
    day = [time.strftime("%Y-%m-%dT%H:%M", time.gmtime(t)) for t in week_ago]
    filters: dict[str, dict[str, str]] = {
        "first page": {},
        "deep page (half-way)": {"older": deep.older or ""},
        "action (common)": {"action": "auth.login.succeeded"},
        "action (rare)": {"action": "iam.policy.deleted"},
        "service iam.*": {"action": "iam.*"},
        "service billing.* (rare)": {"action": "billing.*"},
        "principal": {"principal": f"user:{users[3]}"},
        "result denied": {"result": "denied"},
        "target": {"target": "target 42"},
        "one day two weeks ago": {"since": day[0], "until": day[1]},
        "principal + service + period": {
            "principal": f"user:{users[3]}",
            "action": "iam.*",
            "since": day[0],
        },
        "result failed + period": {"result": "failed", "since": day[0], "until": day[1]},
    }

    htmx = {"HX-Request": "true", "HX-Target": "audit-results"}

    def timed(params: dict[str, str], headers: dict[str, str] | None = None) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            response = client.get(url, params, headers=headers or {})
            elapsed = (time.perf_counter() - t0) * 1000
            assert response.status_code == 200
            return elapsed

        return run

    def query_only(params: dict[str, str]) -> Callable[[], float]:
        """The selector alone: the filtered keyset page's one query, rows fetched."""
        filters_ = EventFilters(
            **{
                k: _aware(v) if k in ("since", "until") else v
                for k, v in params.items()
                if k != "older"
            }
        )

        def run() -> float:
            t0 = time.perf_counter()
            event_page(filter_events(organization, filters_), older_than=params.get("older"))
            return (time.perf_counter() - t0) * 1000

        return run

    def measure(run: Callable[[], float]) -> tuple[float, float]:
        run()  # warm: the first request compiles templates and fills caches
        # Rendered as in production: the test environment wraps every template render to
        # send a signal (for response.context), which costs a few ms on this page.
        with monkeypatch.context() as patch:
            patch.setattr(Template, "_render", _TestState.saved_data.template_render)
            samples = [run() for _ in range(ROUNDS)]
        return statistics.median(samples), _percentile(samples, 0.95)

    figures: dict[str, tuple[float, float, int]] = {}
    details: dict[str, str] = {}
    for name, params in filters.items():
        sql = measure(query_only(params))
        fragment = measure(timed(params, htmx))
        page = measure(timed(params))
        shown = len(client.get(url, params).context["page"])
        figures[name] = (*page, shown)
        details[name] = (
            f"query p50 {sql[0]:6.2f} p95 {sql[1]:6.2f} | htmx list p50 {fragment[0]:6.2f}"
            f" p95 {fragment[1]:6.2f} | full page p50 {page[0]:6.2f} p95 {page[1]:6.2f}"
            f" ms ({shown} rows)"
        )

    # pytest-benchmark's own statistics for the plain first page.
    benchmark.pedantic(timed({}), rounds=10, iterations=1)

    worst = max(figures, key=lambda name: figures[name][1])
    lines = [
        "",
        f"audit trail on {connection.vendor}: {count} events in the organization"
        + (f" (+{NEIGHBOUR_EVENTS} in a neighbour)" if postgres else "")
        + f", loaded in {load_s:.1f} s; {ROUNDS} rounds each of the selector's query, the"
        " HTMX list a filter change fetches (guard, selector, template) and the full page:",
    ]
    for name, detail in details.items():
        lines.append(f"  {name:<30} {detail}")
    p50, p95, _ = figures[worst]
    lines.append(f"worst filter (full page p95): {worst}")
    suffix = "" if postgres else " db=sqlite"
    lines.append(f"BENCH audit events={count} p50_ms={p50:.1f} p95_ms={p95:.1f}{suffix}")
    _emit("\n".join(lines), capsys)
