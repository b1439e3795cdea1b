from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from iamportal.env import env_bool, env_int, env_list, env_networks

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_profile_passes_check_deploy_without_warnings() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="x" * 20 + "a-long-random-production-secret-key-0123456789",
        DJANGO_ALLOWED_HOSTS="iam.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_profile_requires_a_secret_key() -> None:
    result = _manage("check", DJANGO_ENV="production", DJANGO_ALLOWED_HOSTS="iam.example.com")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_unknown_profile_is_refused() -> None:
    result = _manage("check", DJANGO_ENV="staging")
    assert result.returncode != 0
    assert "DJANGO_ENV must be" in result.stderr


def test_env_bool_refuses_junk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be a boolean"):
        env_bool("FLAG", default=False)
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", default=False) is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", default=True) is False


def test_env_int_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("N", 1)
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def test_env_networks_reads_addresses_and_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_networks("PROXIES") == ()
    monkeypatch.setenv("PROXIES", " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,")
    assert [str(n) for n in env_networks("PROXIES")] == [
        "10.0.0.0/8",
        "192.0.2.7/32",
        "2001:db8::/32",
    ]


@pytest.mark.parametrize("junk", ["lb.internal", "10.0.0.1/8", "10.0.0.0/33"])
def test_env_networks_refuses_junk(monkeypatch: pytest.MonkeyPatch, junk: str) -> None:
    monkeypatch.setenv("PROXIES", f"10.0.0.0/8,{junk}")
    with pytest.raises(ImproperlyConfigured, match="PROXIES must list IP addresses"):
        env_networks("PROXIES")


def test_junk_trusted_proxies_stop_the_server() -> None:
    result = _manage("check", IAMPORTAL_TRUSTED_PROXIES="my-load-balancer")
    assert result.returncode != 0
    assert "IAMPORTAL_TRUSTED_PROXIES must list IP addresses" in result.stderr
