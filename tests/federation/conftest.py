"""A real OpenID provider for the federation tests: the `oidc-provider` npm package in a
Node process on a free loopback port (tests/federation/idp/server.js), and helpers that
drive a sign-in through its own login page."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from django.test import Client
from django.utils import timezone

from accounts.models import User
from federation import services
from federation.models import IdentityProvider
from organizations.models import Organization
from tests.conftest import Org
from tests.factories import GroupFactory, PolicyAttachmentFactory, PolicyFactory, RuleFactory
from tests.federation.saml_idp import SAMLIdP, running_saml_idp

IDP_DIR = Path(__file__).parent / "idp"
CLIENT_ID = "iamportal"
CLIENT_SECRET = "test-client-secret-1234"
CALLBACK = "http://testserver/sso/oidc/callback/"
DOMAIN = "acme.test"
# Accounts whose claims differ from the defaults (email = login, verified, no groups).
ACCOUNTS = {
    "unverified@acme.test": {"email_verified": False},
    "finance@acme.test": {"groups": ["finance", "staff"]},
    "mfa@acme.test": {"amr": ["pwd", "mfa"]},
    "elsewhere@acme.test": {"email": "someone@other.test"},
    # A second subject asserting alice's address (a reassigned address at the provider).
    "alias@acme.test": {"email": "alice@acme.test"},
}


@dataclass(frozen=True)
class IdPServer:
    issuer: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_idp(*redirect_uris: str, conform: bool = False) -> Iterator[IdPServer]:
    """The test provider in a Node process, for as long as the block runs."""
    node = shutil.which("node")
    if node is None or not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("The test identity provider is not installed: run scripts/test-idp-install.")
    port = _free_port()
    env = {
        **os.environ,
        "IDP_PORT": str(port),
        "IDP_CLIENT_ID": CLIENT_ID,
        "IDP_CLIENT_SECRET": CLIENT_SECRET,
        "IDP_REDIRECT_URIS": ",".join(redirect_uris),
        "IDP_ACCOUNTS": json.dumps(ACCOUNTS),
        "IDP_CONFORM": "1" if conform else "",
    }
    process = subprocess.Popen(
        [node, "server.js"],
        cwd=IDP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "READY <issuer>" once it listens
        if not line.startswith("READY "):
            pytest.fail(f"The test identity provider did not start: {line!r}")
        yield IdPServer(issuer=line.split()[1])
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def idp() -> Iterator[IdPServer]:
    with running_idp(CALLBACK) as started:
        yield started


def add_provider(
    organization: Organization, actor: User, issuer: str, *, verified: bool = True, **extra: Any
) -> IdentityProvider:
    """An OpenID provider; its domains verified unless `verified=False` (no DNS in tests)."""
    values = {
        "name": "Acme SSO",
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "domains": [DOMAIN],
        **extra,
    }
    provider = services.provider_create(organization=organization, actor=actor, **values)
    if verified:
        provider.domains.update(verified_at=timezone.now())
    return provider


def provider_login(authorization_url: str, login: str) -> str:
    """Sign in at the provider's own login page; returns the console callback URL it
    redirects to (path and query, for Django's test client)."""
    browser = requests.Session()
    page = browser.get(authorization_url, timeout=5)
    assert page.status_code == 200, page.text[:500]
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action is not None, page.text[:500]
    response = browser.post(
        urljoin(page.url, action.group(1)),
        data={"prompt": "login", "login": login, "password": "any"},
        allow_redirects=False,
        timeout=5,
    )
    for _ in range(10):
        location = response.headers.get("Location", "")
        target = urljoin(response.url, location)
        if target.startswith("http://testserver/"):
            parts = urlsplit(target)
            return f"{parts.path}?{parts.query}"
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        response = browser.get(target, allow_redirects=False, timeout=5)
    raise AssertionError("The provider never redirected back to the console.")


def start_sso(client: Client, email: str) -> str:
    response = client.post("/sso/oidc/start/", {"email": email})
    assert response.status_code == 200, response.content[:500]
    return response["Refresh"].removeprefix("0;url=")


def sign_in_through(client: Client, email: str, login: str | None = None):
    """The whole round trip: the console, the provider's login page, the callback."""
    callback = provider_login(start_sso(client, email), login or email)
    return client.get(callback)


@pytest.fixture(scope="session")
def saml_idp() -> Iterator[SAMLIdP]:
    with running_saml_idp() as started:
        yield started


@pytest.fixture
def finance_group(org: Org):
    """A group that grants reading invoices."""
    group = GroupFactory(organization=org.organization, name="finance")
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, actions=["billing:invoices:read"])
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    return group
