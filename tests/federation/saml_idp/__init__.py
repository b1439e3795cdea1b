"""Drive the test SAML IdP (server.py here): start it on a loopback port with a key and
certificate made for the run, register the console's SP, sign in through its login form."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client
from django.utils import timezone

from accounts.models import User
from federation import saml, services
from federation.models import IdentityProvider
from organizations.models import Organization

SERVER = Path(__file__).parent / "server.py"
DOMAIN = "acme.test"
ACCOUNTS = {
    "finance@acme.test": {"groups": ["finance", "staff"]},
    "mfa@acme.test": {"mfa": True},
    "elsewhere@acme.test": {"email": "someone@other.test"},
}


@dataclass(frozen=True)
class SAMLIdP:
    base: str

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/metadata"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_saml_idp() -> Iterator[SAMLIdP]:
    """The test IdP in a Python process, for as long as the block runs."""
    with tempfile.TemporaryDirectory(prefix="saml-idp-") as directory:
        certificate, key = saml.signing_pair("Test IdP")
        Path(directory, "idp.crt").write_text(certificate)
        Path(directory, "idp.key").write_text(key)
        env = {
            "IDP_PORT": str(_free_port()),
            "IDP_KEY": str(Path(directory, "idp.key")),
            "IDP_CERT": str(Path(directory, "idp.crt")),
            "IDP_ACCOUNTS": json.dumps(ACCOUNTS),
            "PATH": os.environ.get("PATH", ""),
        }
        process = subprocess.Popen(
            [sys.executable, str(SERVER)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("READY "):
                pytest.fail(f"The test SAML IdP did not start: {line!r}")
            yield SAMLIdP(base=line.split()[1])
        finally:
            process.terminate()
            process.wait(timeout=10)


def add_saml_provider(
    organization: Organization,
    actor: User,
    idp: SAMLIdP,
    *,
    base: str = "http://testserver",
    verified: bool = True,
    **extra: Any,
) -> IdentityProvider:
    """A SAML provider reading the IdP's metadata, whose SP the IdP then knows; its
    domains verified unless `verified=False`."""
    values = {"name": "Acme SAML", "kind": "saml", "domains": [DOMAIN], **extra}
    values.setdefault("saml_metadata_url", idp.metadata_url)
    provider = services.provider_create(organization=organization, actor=actor, **values)
    if verified:
        provider.domains.update(verified_at=timezone.now())
    register_sp(idp, provider, base)
    return provider


def register_sp(idp: SAMLIdP, provider: IdentityProvider, base: str) -> None:
    host = base.split("://", 1)[1]
    secure = base.startswith("https")
    metadata = Client(HTTP_HOST=host).get(f"/sso/saml/{provider.pk}/metadata/", secure=secure)
    assert metadata.status_code == 200, metadata.content[:300]
    requests.post(f"{idp.base}/sp", data=metadata.content, timeout=5).raise_for_status()


@dataclass(frozen=True)
class Answer:
    """The IdP's answer, as its page would POST it to the console's ACS."""

    acs: str
    data: dict[str, str]


def start_saml(client: Client, email: str) -> str:
    response = client.post("/sso/oidc/start/", {"email": email})
    assert response.status_code == 200, response.content[:500]
    return response["Refresh"].removeprefix("0;url=")


def idp_login(authn_url: str, login: str, mode: str = "") -> Answer:
    """Sign in at the IdP's login form; its answer page's form (action and fields)."""
    browser = requests.Session()
    page = browser.get(authn_url, timeout=5)
    assert page.status_code == 200, page.text[:500]
    query = re.search(r'name="query" value="([^"]*)"', page.text)
    assert query is not None, page.text[:500]
    answer = browser.post(
        f"{page.url.split('/sso/')[0]}/login",
        data={"query": unescape(query.group(1)), "username": login, "password": "x", "mode": mode},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text[:1000]
    action = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
    assert action is not None and "SAMLResponse" in fields, answer.text[:1000]
    return Answer(acs=unescape(action.group(1)), data={k: unescape(v) for k, v in fields.items()})


def post_answer(client: Client, answer: Answer):
    assert answer.acs.startswith("http://testserver/"), answer.acs
    return client.post(answer.acs.removeprefix("http://testserver"), answer.data)


def saml_sign_in(client: Client, email: str, login: str | None = None, mode: str = ""):
    """The whole round trip: the console, the IdP's login form, the ACS."""
    return post_answer(client, idp_login(start_saml(client, email), login or email, mode))
