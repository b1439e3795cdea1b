"""ID token validation (federation.oidc) with tokens signed by a test key: each wrong
token is refused with its reason; the callback records the refusal."""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from audit.models import AuditEvent
from federation import oidc
from tests.conftest import Org
from tests.federation.conftest import add_provider, provider_login, start_sso

ISSUER = "https://idp.example.com"
CLIENT = "console"
NONCE = "n-0S6_WzA2Mj"
KEY = RSAKey.generate_key(2048, parameters={"kid": "test"})
JWKS = KeySet([KEY]).as_dict(private=False)


def _token(key: RSAKey = KEY, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "248289761001",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


def _validate(token: str) -> dict[str, Any]:
    return oidc.validate_id_token(token, jwks=JWKS, issuer=ISSUER, client_id=CLIENT, nonce=NONCE)


def test_a_good_token_gives_its_claims() -> None:
    assert _validate(_token(email="a@example.com"))["email"] == "a@example.com"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "another-client"}, "wrong_aud"),
        ({"iss": "https://evil.example.com"}, "wrong_iss"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nonce": "replayed"}, "wrong_nonce"),
        ({"nonce": None}, "wrong_nonce"),
        ({"sub": None}, "wrong_sub"),
    ],
)
def test_a_wrong_token_is_refused(claims: dict[str, Any], reason: str) -> None:
    present = {name: value for name, value in claims.items() if value is not None}
    token = _token(**present)
    if len(present) != len(claims):  # a claim to leave out
        missing = next(name for name, value in claims.items() if value is None)
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": CLIENT, "sub": "1", "exp": now + 300, "nonce": NONCE}
        payload.pop(missing)
        token = jwt.encode({"alg": "RS256", "kid": "test"}, payload, KEY)
    with pytest.raises(oidc.TokenRefused) as refused:
        _validate(token)
    assert refused.value.reason == reason


def test_a_token_signed_by_another_key_is_refused() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "test"})
    with pytest.raises(oidc.TokenRefused) as refused:
        _validate(_token(key=other))
    assert refused.value.reason == "bad_signature"


def test_an_unsigned_token_is_refused() -> None:
    header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    body = _token().split(".")[1]
    with pytest.raises(oidc.TokenRefused):
        _validate(f"{header}.{body}.")


def test_provider_mfa_reads_amr_and_acr() -> None:
    assert oidc.provider_mfa({"amr": ["pwd", "otp"]})
    assert oidc.provider_mfa(
        {"acr": "http://schemas.openid.net/pape/policies/2007/06/multi-factor"}
    )
    assert not oidc.provider_mfa({"amr": ["pwd"]})
    assert not oidc.provider_mfa({})


@pytest.mark.parametrize(
    ("reason", "message"),
    [("wrong_aud", "wrong audience"), ("wrong_iss", "wrong issuer"), ("expired", "expired")],
)
def test_the_callback_refuses_and_audits_a_bad_token(
    org: Org, idp, reason: str, message: str
) -> None:
    """A real round trip whose token validation fails: refused page and audit event."""
    add_provider(org.organization, org.owner.user, idp.issuer)
    client = Client()
    callback = provider_login(start_sso(client, "alice@acme.test"), "alice@acme.test")
    with mock.patch.object(
        oidc, "validate_id_token", side_effect=oidc.TokenRefused(reason, message)
    ):
        response = client.get(callback)
    assert response.status_code == 403
    assert message.encode() in response.content
    event = AuditEvent.objects.get(action="federation.sso.refused")
    assert event.data["reason"] == reason and event.organization == org.organization
    assert "_auth_user_id" not in client.session
