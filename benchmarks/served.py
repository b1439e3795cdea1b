"""Serving the project with gunicorn on a `test_` database, for what drives it over HTTP
(`bench_api.py`, `bench_scale.py`, the two-server test): one way to start, sign in and stop."""

from __future__ import annotations

import http.client
import http.cookies
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url(name: str) -> str:
    parts = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def start_gunicorn(
    database: str,
    *,
    settings: str,
    workers: int,
    extra: tuple[str, ...] = (),
    environment: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, int]:
    """gunicorn (sync workers, DEBUG off) on `database` and a free loopback port, once it
    answers `/healthz`; returns the server and its port. `environment` adds settings."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(database),
        "DJANGO_SETTINGS_MODULE": settings,
        "DJANGO_DEBUG": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        **(environment or {}),
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(  # noqa: S603 (our own venv's gunicorn, fixed arguments)
        [
            str(gunicorn),
            "iamportal.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=sync",
            "--log-level=warning",
            *extra,
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited at start")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def stop_gunicorn(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)  # graceful: the worker finishes its request
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
    jar: dict[str, str] = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        parsed = http.cookies.SimpleCookie()
        parsed.load(header)
        jar.update({name: morsel.value for name, morsel in parsed.items()})
    return jar


def log_in(port: int, email: str, password: str) -> tuple[int, dict[str, str]]:
    """Through the login form, as a browser: its CSRF cookie and token, then the post.
    Returns the post's status and the cookies (a session's when it signed in)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/accounts/login/")
    response = conn.getresponse()
    page = response.read().decode()
    jar = _cookies(response)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if response.status != 200 or token is None:
        raise SystemExit(f"log_in: the login page answered {response.status}")
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token.group(1), "username": email, "password": password}
    )
    conn.request(
        "POST",
        "/accounts/login/",
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
            "Origin": f"http://127.0.0.1:{port}",
            "Referer": f"http://127.0.0.1:{port}/accounts/login/",
        },
    )
    response = conn.getresponse()
    response.read()
    jar.update(_cookies(response))
    return response.status, jar


def sign_in(port: int, email: str, password: str) -> dict[str, str]:
    """`log_in` that must succeed (accounts without MFA: the password step ends it)."""
    status, jar = log_in(port, email, password)
    if status != 302 or not any(name.endswith("sessionid") for name in jar):
        raise SystemExit(f"sign_in: signing in as {email} answered {status}")
    return jar
