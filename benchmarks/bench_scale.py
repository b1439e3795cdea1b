"""Every main page of the console on one big organization: `make bench-scale` (issue #15).

A plain script, like `bench_api.py` and on the same approach: it creates a database beside
DATABASE_URL's (`test_<name>`, dropped at the end), seeds it with `manage.py seed_scale`
(sizes: BENCH_SCALE_SIZE=full, the issue's, or small for a quick run), starts gunicorn
(2 sync workers, DEBUG off) on a free loopback port, signs in through the login form as
the owner and as the probe (a non-owner holding 25 policies through 5 groups), and drives
each page of `benchmarks.scale_pages` from a load generator on loopback (client processes
looping on `http.client`), at 1 and at 10 clients, for BENCH_SCALE_SECONDS a phase.

Query counts and page bytes come from a separate in-process pass (Django's test client
under CaptureQueriesContext, on the same database, the second of two requests): a server
with DEBUG off has no query log. The throughput ratio compares each page with the bare
signed-in page (`/accounts/`: the account page, session and user only) of the same
persona at the same concurrency, measured again every few pages: each page is compared
with the mean of the measurements just before and after it.

Budgets (issue #15): at 10 clients every page p95 <= 150 ms and >= 25% of the bare page's
throughput; <= 15 queries and <= 200 KB of HTML; a worker's RSS <= 250 MB after the run.
The exit status is 1 when one is missed, after printing everything. Last line:

    BENCH scale worst_p95_ms=<n> worst_ratio=<n> max_queries=<n> max_kb=<n> rss_mb=<n>
"""

from __future__ import annotations

import http.client
import http.cookies
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
import tracemalloc
from dataclasses import dataclass
from io import StringIO
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
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from benchmarks.scale_pages import BASELINE, Page, pages_for  # noqa: E402
from benchmarks.served import sign_in, start_gunicorn, stop_gunicorn  # noqa: E402
from organizations.models import Membership, Organization  # noqa: E402
from policies import authz  # noqa: E402

SIZES = {
    "full": {
        "users": 10_000,
        "groups": 500,
        "policies": 5_000,
        "rules-per-policy": 5,
        "applications": 2_000,
        "api-keys": 20_000,
        "projects": 200,
        "audit-events": 1_000_000,
    },
    "small": {
        "users": 500,
        "groups": 40,
        "policies": 300,
        "rules-per-policy": 5,
        "applications": 100,
        "api-keys": 1_000,
        "projects": 20,
        "audit-events": 20_000,
    },
}
SIZE = os.environ.get("BENCH_SCALE_SIZE", "full")
SECONDS = float(os.environ.get("BENCH_SCALE_SECONDS", "3" if SIZE == "full" else "1.5"))
CONCURRENCY = (1, 10)
WORKERS = 2
PERSONAS = ("owner", "probe")
OWNER = ("owner@scale.scale.example", "scale-owner-2026")
PROBE = ("probe@scale.scale.example", "scale-probe-2026")
BUDGET_P95_MS = 150.0
BUDGET_RATIO = 0.25
BASELINE_EVERY = 6  # pages between two measurements of the bare page
BUDGET_QUERIES = 15
BUDGET_KB = 200.0
BUDGET_RSS_MB = 250.0


def seed_arguments() -> list[str]:
    """The seed's sizes: the preset, each overridable (BENCH_SCALE_USERS=..., etc.)."""
    if SIZE not in SIZES:
        raise SystemExit(f"bench_scale: BENCH_SCALE_SIZE is one of {sorted(SIZES)}")
    sizes = dict(SIZES[SIZE])
    for name in sizes:
        given = os.environ.get("BENCH_SCALE_" + name.upper().replace("-", "_"))
        if given:
            sizes[name] = int(given)
    return [f"--{name}={value}" for name, value in sizes.items()]


# ------------------------------------------------------------------------------ load


def _client(args: tuple[int, str, dict[str, str], float]) -> Any:
    """One client's loop: a warm-up request, then requests until `seconds` have passed.
    Returns (latencies in seconds, {status: count} of non-200 answers, elapsed)."""
    port, path, headers, seconds = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", path, headers=headers)
    conn.getresponse().read()
    latencies: list[float] = []
    errors: dict[int, int] = {}
    started = time.perf_counter()
    end = started + seconds
    while True:
        sent = time.perf_counter()
        if sent >= end and latencies:
            break
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - sent)
        if response.status != 200:
            errors[response.status] = errors.get(response.status, 0) + 1
    conn.close()
    return latencies, errors, time.perf_counter() - started


@dataclass
class Figures:
    p50_ms: float
    p95_ms: float
    rps: float
    requests: int
    errors: dict[int, int]


def measure(port: int, page: Page, who: str, cookie: str, clients: int) -> Figures:
    """`drive`, with a progress line: a full run takes a while."""
    figures = drive(port, page, cookie, clients)
    print(
        f"  .. {clients:2d} clients {who:5} {page.name:32}"
        f" p95 {figures.p95_ms:6.0f} ms {figures.rps:6.1f} req/s",
        file=sys.stderr,
        flush=True,
    )
    return figures


def _mean_figures(runs: list[Figures]) -> Figures:
    errors: dict[int, int] = {}
    for run in runs:
        for status, n in run.errors.items():
            errors[status] = errors.get(status, 0) + n
    return Figures(
        p50_ms=statistics.mean(r.p50_ms for r in runs),
        p95_ms=max(r.p95_ms for r in runs),
        rps=statistics.mean(r.rps for r in runs),
        requests=sum(r.requests for r in runs),
        errors=errors,
    )


def drive(port: int, page: Page, cookie: str, clients: int) -> Figures:
    headers = {"Cookie": cookie, **page.headers}
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(clients) as pool:
        results = pool.map(_client, [(port, page.path, headers, SECONDS)] * clients)
    latencies = sorted(lat for lats, _, _ in results for lat in lats)
    errors: dict[int, int] = {}
    for _, errs, _ in results:
        for status, n in errs.items():
            errors[status] = errors.get(status, 0) + n
    # Each client measured its own span: the slowest one's bounds the phase.
    elapsed = max(span for _, _, span in results)
    return Figures(
        p50_ms=statistics.median(latencies) * 1000,
        p95_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000,
        rps=len(latencies) / elapsed,
        requests=len(latencies),
        errors=errors,
    )


# ------------------------------------------------------------------------------ server


def worker_rss_mb(server: subprocess.Popen) -> float:
    """The largest VmRSS among gunicorn's workers (the master's children)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    largest = 0.0
    for pid in children:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            largest = max(largest, int(match.group(1)) / 1024)
    return largest


# ------------------------------------------------------------------------------ queries


@dataclass
class Static:
    status: int
    queries: int
    bytes: int
    problem: str = ""


def in_process(page: Page, jar: dict[str, str]) -> Static:
    """Queries and bytes of the page's second request (the first warms caches)."""
    client = Client(SERVER_NAME="127.0.0.1")
    client.cookies[settings.SESSION_COOKIE_NAME] = jar[settings.SESSION_COOKIE_NAME]
    headers = page.headers
    try:
        client.get(page.path, headers=headers)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(page.path, headers=headers)
            body = (
                b"".join(response.streaming_content)
                if response.streaming
                else bytes(response.content)
            )
    except Exception:  # reported with its traceback; the run goes on
        return Static(500, 0, 0, traceback.format_exc())
    return Static(response.status_code, len(queries.captured_queries), len(body))


# ------------------------------------------------------------------------------ main


@dataclass(frozen=True)
class CacheFigures:
    principals: int
    sets: int
    entries: int
    memory_mb: float
    seconds: float


def cache_memory(organization: Organization) -> CacheFigures:
    """Compile every member's rules through the process cache (`policies.authz`), as a
    worker serving all of them would, and measure what the cache holds (#15 item 4:
    compiled policies are shared, so this grows with distinct rule sets, not members)."""
    members = list(Membership.objects.filter(organization=organization).select_related("user"))
    for member in members:
        member.organization = organization
    authz._cache.clear()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.monotonic()
    sets = {id(authz.rules_for(member)) for member in members}
    seconds = time.monotonic() - started
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return CacheFigures(len(members), len(sets), len(authz._cache), used / 1e6, seconds)


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # seed progress
    if connection.vendor != "postgresql":
        raise SystemExit("bench_scale: needs DATABASE_URL naming PostgreSQL (make sets one)")
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    rss = 0.0
    measured: dict[tuple[str, str, int], Figures] = {}
    base_rps: dict[tuple[str, str, int], float] = {}  # the baseline each page is compared with
    static: dict[tuple[str, str], Static] = {}
    try:
        started = time.monotonic()
        call_command("seed_scale", *seed_arguments(), "--replace", stdout=sys.stdout)
        seed_seconds = time.monotonic() - started
        print(f"bench_scale: seed_scale ({SIZE}) took {seed_seconds:.0f} s")
        organization = Organization.objects.get(name="Scale")
        started = time.monotonic()
        out = StringIO()
        call_command("verify_audit", organization=str(organization.pk), stdout=out)
        print(f"bench_scale: {out.getvalue().strip()} ({time.monotonic() - started:.0f} s)")
        probe = Membership.objects.get(organization=organization, user__email=PROBE[0])
        pages = pages_for(organization, probe)
        connections.close_all()  # the load generator forks; gunicorn has its own
        server, port = start_gunicorn(
            database, settings=SETTINGS, workers=WORKERS, extra=("--timeout=300",)
        )  # slow pages are measured, not killed
        jars = {"owner": sign_in(port, *OWNER), "probe": sign_in(port, *PROBE)}
        cookies = {who: "; ".join(f"{k}={v}" for k, v in jar.items()) for who, jar in jars.items()}
        for who in PERSONAS:
            for page in pages:
                static[who, page.name] = in_process(page, jars[who])
        connections.close_all()
        baseline_page = next(page for page in pages if page.name == BASELINE)
        for clients in CONCURRENCY:
            for who in PERSONAS:
                # The bare page again every few pages: each page is compared with the
                # baselines measured just before and after it, not with one taken minutes
                # earlier (the machine's speed drifts through a sweep).
                cookie = cookies[who]
                bases = [measure(port, baseline_page, who, cookie, clients)]
                sweep = [
                    p for p in pages if p.name != BASELINE and static[who, p.name].status == 200
                ]
                for start in range(0, len(sweep), BASELINE_EVERY):
                    chunk = sweep[start : start + BASELINE_EVERY]
                    figures = {
                        page.name: measure(port, page, who, cookie, clients) for page in chunk
                    }
                    bases.append(measure(port, baseline_page, who, cookie, clients))
                    around = statistics.mean(b.rps for b in bases[-2:])
                    for name, page_figures in figures.items():
                        measured[who, name, clients] = page_figures
                        base_rps[who, name, clients] = around
                measured[who, BASELINE, clients] = _mean_figures(bases)
                base_rps[who, BASELINE, clients] = measured[who, BASELINE, clients].rps
        rss = worker_rss_mb(server)
        cache = cache_memory(organization)
    finally:
        if server is not None:
            stop_gunicorn(server)
        connections.close_all()
        connection.creation.destroy_test_db(settings.DATABASES["default"]["NAME"], verbosity=0)

    worst_p95 = 0.0
    worst_ratio = float("inf")
    max_queries = 0
    max_kb = 0.0
    missed: list[str] = []
    print(
        f"\nbench_scale: {SIZE} organization, gunicorn {WORKERS} sync workers, PostgreSQL,"
        f" {SECONDS:g} s a phase; ratio = req/s / {BASELINE} req/s (same persona, clients,"
        f" measured before and after every {BASELINE_EVERY} pages: the mean of the two around"
        " the page; the baseline's own row: the mean of all)"
    )
    header = (
        f"  {'page':32} {'who':5} | {'p50 ms':>7} {'p95 ms':>7} {'req/s':>7} {'ratio':>5}"
        f" | {'p50 ms':>7} {'p95 ms':>7} {'req/s':>7} {'ratio':>5} | {'queries':>7} {'KB':>7}"
    )
    print(f"  {'':38} | {'1 client':^30} | {'10 clients':^30} |")
    print(header)
    for who in PERSONAS:
        for page in pages:
            facts = static[who, page.name]
            kb = facts.bytes / 1024
            cells = []
            for clients in CONCURRENCY:
                figures = measured.get((who, page.name, clients))
                base = base_rps.get((who, page.name, clients))
                if figures is None or base is None:
                    cells.append(f"{'-':>7} {'-':>7} {'-':>7} {'-':>5}")
                    continue
                ratio = figures.rps / base
                cells.append(
                    f"{figures.p50_ms:7.0f} {figures.p95_ms:7.0f} {figures.rps:7.1f} {ratio:5.2f}"
                )
                if figures.errors:
                    missed.append(f"{who} {page.name}: answered {figures.errors}")
                if clients == max(CONCURRENCY):
                    worst_p95 = max(worst_p95, figures.p95_ms)
                    if page.name != BASELINE:
                        worst_ratio = min(worst_ratio, ratio)
                    if figures.p95_ms > BUDGET_P95_MS:
                        missed.append(f"{who} {page.name}: p95 {figures.p95_ms:.0f} ms")
                    if page.name != BASELINE and ratio < BUDGET_RATIO:
                        missed.append(f"{who} {page.name}: ratio {ratio:.2f}")
            print(
                f"  {page.name:32} {who:5} | {cells[0]} | {cells[1]} | {facts.queries:7d} {kb:7.1f}"
            )
            if facts.status != 200:
                missed.append(f"{who} {page.name}: status {facts.status}")
                if facts.problem:
                    print(facts.problem)
                continue
            max_queries = max(max_queries, facts.queries)
            if facts.queries > BUDGET_QUERIES:
                missed.append(f"{who} {page.name}: {facts.queries} queries")
            if page.html:
                max_kb = max(max_kb, kb)
                if kb > BUDGET_KB:
                    missed.append(f"{who} {page.name}: {kb:.0f} KB")
    if rss > BUDGET_RSS_MB:
        missed.append(f"worker RSS {rss:.0f} MB")
    if worst_ratio == float("inf"):
        worst_ratio = 0.0
    print(f"  largest gunicorn worker RSS after the run: {rss:.0f} MB")
    print(
        f"  compiled rules cache (policies.authz) with every member's rules: {cache.principals}"
        f" principals in {cache.sets} distinct rule sets, {cache.entries} entries,"
        f" {cache.memory_mb:.0f} MB (tracemalloc), cold compile of all {cache.seconds:.0f} s"
        " (under tracemalloc)"
    )
    print(
        f"  budgets at {max(CONCURRENCY)} clients: p95 <= {BUDGET_P95_MS:.0f} ms, ratio >="
        f" {BUDGET_RATIO}, <= {BUDGET_QUERIES} queries, <= {BUDGET_KB:.0f} KB HTML, RSS <="
        f" {BUDGET_RSS_MB:.0f} MB: " + ("met" if not missed else f"{len(missed)} MISSED")
    )
    for problem in missed:
        print(f"    MISSED {problem}")
    print(
        f"BENCH scale worst_p95_ms={worst_p95:.0f} worst_ratio={worst_ratio:.2f}"
        f" max_queries={max_queries} max_kb={max_kb:.0f} rss_mb={rss:.0f}"
    )
    if missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
