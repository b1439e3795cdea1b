"""What `POST /api/v1/authorize` serves over HTTP: `make bench` (needs PostgreSQL).

A plain script (run by `make bench` after the pytest benches). It creates a database
beside DATABASE_URL's (`test_<name>`, dropped at the end, so a real database is never
touched), migrates it, and loads an organization the way a platform would use it: 24
members on the managed roles, groups and custom policies with CEL conditions (office
network, MFA), a deny rule, project-scoped grants, applications, and a service
application holding `iam:authorize:check` by name, with a real API key. It then starts
gunicorn (one sync worker, the project's settings with DEBUG off, plus the trivial view
of `benchmarks.bench_urls`) on a free loopback port and drives it from a load generator
on loopback: `CONNECTIONS` client processes, each a loop of keep-alive-capable
`http.client` requests (Python only, so it runs on a fresh machine; no wrk needed).

Three phases of `BENCH_API_SECONDS` (default 10) each, after a short warm-up: the trivial
JSON view (parses a one-question body, answers a JSON object), single-question authorize
calls (cycling over principals, actions and contexts), and batches of 100 questions. The
last line is machine-readable:

    BENCH api authorize_rps=<n> batch_decisions_per_s=<n> ratio_vs_trivial=<n> p95_ms=<n>

`p95_ms` is the single authorize call's. Targets (issue #13): ratio >= 0.60, and >= 20,000
batch decisions per second per worker (there is one worker).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETTINGS = "benchmarks.bench_settings"
os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
os.environ["DJANGO_DEBUG"] = "0"  # no query log, as in production

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402

from benchmarks.served import start_gunicorn, stop_gunicorn  # noqa: E402
from organizations.models import Membership  # noqa: E402
from policies.catalogue import AUTHORIZE_CHECK  # noqa: E402
from policies.models import Policy, PolicyAttachment, Rule  # noqa: E402
from tests.api.conftest import allow, key_token  # noqa: E402
from tests.factories import (  # noqa: E402
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    OrganizationFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
)

SECONDS = float(os.environ.get("BENCH_API_SECONDS", "10"))
WARMUP_SECONDS = 1.5
CONNECTIONS = int(os.environ.get("BENCH_API_CONNECTIONS", "4"))
BATCH = 100
MEMBERS = 24
TARGET_RATIO = 0.60
TARGET_BATCH_PER_S = 20_000


# ------------------------------------------------------------------------------ data


def _policy(organization: Any, name: str, *rules: dict[str, Any]) -> Policy:
    policy = PolicyFactory(organization=organization, name=name)
    for position, rule in enumerate(rules, start=1):
        projects = rule.pop("projects", None)
        created = RuleFactory(policy=policy, position=position, **rule)
        if projects:
            created.projects.set(projects)
    return policy


def load() -> tuple[str, list[dict[str, Any]], list[str]]:
    """The organization; returns the service's token, the principals, the projects."""
    organization = OrganizationFactory(name="Bench")
    owner = MembershipFactory(organization=organization, is_owner=True)
    projects = [ProjectFactory(organization=organization, name=f"p{i}") for i in range(6)]
    managed = {
        name: Policy.objects.get(kind=Policy.Kind.MANAGED, name=name)
        for name in ("TechAccess", "ReadOnlyAccess", "BillingAccess")
    }
    office = _policy(
        organization,
        "office-iam",
        {
            "actions": ["iam:users:*", "iam:groups:*"],
            "condition": 'ip_in_range(request.ip, "10.0.0.0/8")',
        },
        {"actions": ["iam:api-keys:*"], "condition": "request.mfa"},
    )
    no_delete = _policy(
        organization,
        "no-deletes",
        {
            "effect": Rule.Effect.DENY,
            "actions": ["compute:instances:delete", "storage:buckets:delete"],
            "scope": Rule.Scope.ALL_PROJECTS,
        },
    )
    web = _policy(
        organization,
        "web-operators",
        {
            "actions": ["compute:instances:*", "dns:zones:*"],
            "scope": Rule.Scope.PROJECTS,
            "projects": projects[:2],
        },
        {
            "actions": ["storage:buckets:read", "storage:buckets:list"],
            "scope": Rule.Scope.ALL_PROJECTS,
            "condition": 'request.user_agent.matches("^corp-")',
        },
    )
    admins = GroupFactory(organization=organization, name="admins")
    operators = GroupFactory(organization=organization, name="operators")
    for group, policies in ((admins, [office, no_delete]), (operators, [web, no_delete])):
        for policy in policies:
            PolicyAttachment.objects.create(policy=policy, organization=organization, group=group)
    members = []
    roles = list(managed.values())
    for index in range(MEMBERS):
        member = MembershipFactory(organization=organization)
        PolicyAttachment.objects.create(
            policy=roles[index % len(roles)], organization=organization, membership=member
        )
        if index % 3 == 0:
            admins.members.add(member)
        if index % 2 == 0:
            operators.members.add(member)
        members.append(member)
    applications = [ApplicationFactory(organization=organization) for _ in range(4)]
    for application in applications:
        operators.applications.add(application)
    service = ApplicationFactory(organization=organization, name="platform")
    allow(service, AUTHORIZE_CHECK, scope=Rule.Scope.ORGANIZATION)
    token = key_token(service, owner)
    principals = [{"type": "user", "id": str(m.user_id)} for m in [owner, *members]]
    principals += [{"type": "application", "id": str(a.pk)} for a in applications]
    assert Membership.objects.filter(organization=organization).count() == MEMBERS + 1
    return token, principals, [str(p.pk) for p in projects]


ACTIONS = [
    ("iam:users:list", False),
    ("iam:groups:update", False),
    ("iam:api-keys:create", False),
    ("billing:invoices:read", False),
    ("compute:instances:create", True),
    ("compute:instances:delete", True),
    ("storage:buckets:read", True),
    ("dns:zones:update", True),
    ("projects:projects:read", True),
    ("audit:events:list", False),
]
CONTEXTS = [
    {"ip": "10.1.2.3", "user_agent": "corp-cli/2.1", "mfa": True},
    {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0", "mfa": False},
    {"ip": "10.20.0.7", "user_agent": "curl/8.5", "mfa": False},
    {"ip": "2001:db8::1", "user_agent": "corp-web", "mfa": True},
]


def questions(principals: list[dict[str, Any]], projects: list[str], count: int, start: int):
    out = []
    for i in range(start, start + count):
        action, project_level = ACTIONS[i % len(ACTIONS)]
        question: dict[str, Any] = {
            "principal": principals[(i * 7) % len(principals)],
            "action": action,
            "context": CONTEXTS[(i // 3) % len(CONTEXTS)],
        }
        if project_level and i % 4:
            question["project"] = projects[i % len(projects)]
        out.append(question)
    return out


# ------------------------------------------------------------------------------ load


def _client(args: tuple[int, str, list[bytes], dict[str, str], float, float]) -> Any:
    """One connection's loop: (ok, errors, latencies in seconds) over the measured span."""
    port, path, bodies, headers, start, end = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    errors: dict[int, int] = {}
    i = os.getpid()
    while time.time() < start:  # warm-up: same load, not counted
        conn.request("POST", path, bodies[i % len(bodies)], headers)
        conn.getresponse().read()
        i += 1
    while True:
        sent = time.perf_counter()
        if time.time() >= end:
            break
        conn.request("POST", path, bodies[i % len(bodies)], headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - sent)
        if response.status != 200:
            errors[response.status] = errors.get(response.status, 0) + 1
        i += 1
    conn.close()
    return latencies, errors


def drive(port: int, path: str, bodies: list[bytes], token: str | None) -> dict[str, float]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    start = time.time() + WARMUP_SECONDS
    end = start + SECONDS
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(CONNECTIONS) as pool:
        results = pool.map(_client, [(port, path, bodies, headers, start, end)] * CONNECTIONS)
    latencies = sorted(lat for lats, _ in results for lat in lats)
    errors: dict[int, int] = {}
    for _, errs in results:
        for status, n in errs.items():
            errors[status] = errors.get(status, 0) + n
    if errors:
        raise SystemExit(f"bench_api: {path} answered errors {errors}")
    return {
        "rps": len(latencies) / SECONDS,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
        "requests": len(latencies),
    }


# ------------------------------------------------------------------------------ server


def check(port: int, token: str, body: bytes) -> list[dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/api/v1/authorize",
        body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    response = conn.getresponse()
    content = response.read()
    if response.status != 200:
        raise SystemExit(f"bench_api: authorize answered {response.status}: {content[:500]!r}")
    return json.loads(content)["decisions"]


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("bench_api: needs DATABASE_URL naming PostgreSQL (make bench sets one)")
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    try:
        token, principals, projects = load()
        connections.close_all()  # the load generator forks; gunicorn has its own
        server, port = start_gunicorn(database, settings=SETTINGS, workers=1)
        singles = [
            json.dumps({"questions": questions(principals, projects, 1, i)}).encode()
            for i in range(len(principals) * len(ACTIONS))
        ]
        batches = [
            json.dumps({"questions": questions(principals, projects, BATCH, i * BATCH)}).encode()
            for i in range(8)
        ]
        answers = check(port, token, batches[0])
        allowed = sum(a["allowed"] for a in answers)
        reasons = sorted({a["reason"] for a in answers})
        print(
            f"\nbench_api: a batch decides {allowed} allowed / {BATCH - allowed} denied {reasons}"
        )
        trivial = drive(port, "/bench/trivial", singles, None)
        single = drive(port, "/api/v1/authorize", singles, token)
        batch = drive(port, "/api/v1/authorize", batches, token)
    finally:
        if server is not None:
            stop_gunicorn(server)
        connection.creation.destroy_test_db(settings.DATABASES["default"]["NAME"], verbosity=0)
    ratio = single["rps"] / trivial["rps"]
    decisions = batch["rps"] * BATCH
    for name, figures in (
        ("trivial view", trivial),
        ("authorize x1", single),
        ("authorize x100", batch),
    ):
        print(
            f"  {name:15} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms"
            f"  p95 {figures['p95_ms']:6.2f} ms  ({figures['requests']} requests)"
        )
    print(
        f"  1 gunicorn sync worker, {CONNECTIONS} connections, {SECONDS:.0f} s a phase;"
        f" targets: ratio >= {TARGET_RATIO} ({'met' if ratio >= TARGET_RATIO else 'MISSED'}),"
        f" batch >= {TARGET_BATCH_PER_S} decisions/s/worker"
        f" ({'met' if decisions >= TARGET_BATCH_PER_S else 'MISSED'})"
    )
    print(
        f"BENCH api authorize_rps={single['rps']:.0f} batch_decisions_per_s={decisions:.0f}"
        f" ratio_vs_trivial={ratio:.2f} p95_ms={single['p95_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
