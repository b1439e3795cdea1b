"""The OpenID Connect protocol, through maintained libraries: Authlib's OAuth 2.0 client
(authorization code with PKCE, state) and joserfc, Authlib's JOSE library, for the ID
token (signature against the provider's JWKS, issuer, audience, expiry, nonce).

Every call to a provider is bounded (5 s, 256 KiB): a slow or broken provider fails the
single sign-on attempt with a clear message and touches nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

TIMEOUT_SECONDS = 5
MAX_BYTES = 256 * 1024
# Asymmetric signatures only: an HMAC "signed" with the client secret proves less.
# NAT64 maps IPv4 into it: Python counts it global, yet it can reach private IPv4 networks.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
# amr values that mean a second factor at the provider (RFC 8176).
MFA_AMR = frozenset({"mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "retina"})


class ProviderUnavailable(Exception):
    """The provider did not answer usably (down, slow, too large, not JSON)."""


class TokenRefused(Exception):
    """The ID token is not one we accept; `reason` is a short code for the audit."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str


def check_reachable(url: str) -> None:
    """Refuse a provider URL whose host resolves to an address of this server's own
    networks (loopback, private, link-local, reserved), unless the operator allows them
    (`IAMPORTAL_SSO_PRIVATE_ADDRESSES`, on in development for local providers): an owner
    must not make the console probe the networks it runs in. Checked before each call;
    redirects are never followed."""
    if settings.SSO_PRIVATE_ADDRESSES:
        return
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError) as error:
        raise ProviderUnavailable(f"{parts.hostname} could not be resolved.") from error
    for *_, address in found:
        ip = ipaddress.ip_address(address[0].split("%")[0])
        if not ip.is_global or ip in _NAT64:
            # The address stays in the server log: telling it to the owner maps the network.
            logging.getLogger(__name__).warning(
                "Refused provider host %s: resolves to %s", parts.hostname, ip
            )
            raise ProviderUnavailable(
                f"{parts.hostname} resolves to a private network address: "
                "identity providers must be reachable on the internet."
            )


def _read_bounded(response: requests.Response, url: str) -> bytes:
    """The body within one deadline for all of it (the timeout bounds each read only,
    so a trickle would last for ever) and within the size cap."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    body = bytearray()
    if response.headers.get("Content-Encoding", "identity") != "identity":
        # Asked for identity: a decoder could stall a read1 past the deadline (and inflate).
        raise ProviderUnavailable(f"{url} answered compressed content.")
    # read1 returns what has arrived, where read(8192) would wait for all 8192 bytes.
    while chunk := response.raw.read1(8192, decode_content=False):
        body += chunk
        if len(body) > MAX_BYTES:
            raise ProviderUnavailable(f"{url} answered more than {MAX_BYTES // 1024} KiB.")
        if time.monotonic() > deadline:
            raise ProviderUnavailable(f"{url} took more than {TIMEOUT_SECONDS} s to answer.")
    return bytes(body)


def fetch_bytes(url: str, *, headers: dict[str, str] | None = None) -> bytes:
    """GET a document, bounded in time and size, without following redirects (SAML
    metadata uses it too)."""
    check_reachable(url)
    try:
        with requests.get(
            url,
            headers={**(headers or {}), "Accept-Encoding": "identity"},
            timeout=TIMEOUT_SECONDS,
            stream=True,
            allow_redirects=False,
        ) as response:
            if response.status_code != 200:
                raise ProviderUnavailable(f"{url} answered HTTP {response.status_code}.")
            return _read_bounded(response, url)
    except requests.RequestException as error:
        raise ProviderUnavailable(
            f"{url} could not be reached ({type(error).__name__})."
        ) from error


def fetch_json(url: str, *, access_token: str = "") -> dict[str, Any]:
    """GET a JSON object (bounded, as fetch_bytes)."""
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    body = fetch_bytes(url, headers=headers)
    try:
        data = json.loads(body)
    except ValueError as error:
        raise ProviderUnavailable(f"{url} did not answer JSON.") from error
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"{url} did not answer a JSON object.")
    return data


def discover(issuer: str) -> Discovery:
    """The provider's discovery document, checked against its configured issuer."""
    data = fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if data.get("issuer") != issuer:
        raise ProviderUnavailable(
            f"The discovery document names the issuer {data.get('issuer')!r}, not {issuer!r}."
        )
    missing = [
        name
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(data.get(name), str)
    ]
    if missing:
        raise ProviderUnavailable(f"The discovery document lacks {', '.join(missing)}.")
    return Discovery(
        issuer=issuer,
        authorization_endpoint=data["authorization_endpoint"],
        token_endpoint=data["token_endpoint"],
        jwks_uri=data["jwks_uri"],
        userinfo_endpoint=str(data.get("userinfo_endpoint") or ""),
    )


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def _client(*, client_id: str, client_secret: str, scope: str, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client_id,
        client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )


def authorization_request(
    discovery: Discovery, *, client_id: str, scope: str, redirect_uri: str, login_hint: str
) -> AuthorizationRequest:
    """Where to send the browser: a fresh state, nonce and PKCE verifier with it."""
    nonce = generate_token(32)
    verifier = generate_token(64)
    client = _client(client_id=client_id, client_secret="", scope=scope, redirect_uri=redirect_uri)
    url, state = client.create_authorization_url(
        discovery.authorization_endpoint,
        nonce=nonce,
        code_verifier=verifier,
        login_hint=login_hint,
    )
    return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str


def _refuse_redirect(response: requests.Response) -> requests.Response:
    """Not followed (it would take the secret and code along), nor read as tokens."""
    if response.is_redirect:
        raise ProviderUnavailable("The token endpoint answered a redirect, which is not followed.")
    return response


def exchange_code(
    discovery: Discovery,
    *,
    client_id: str,
    client_secret: str,
    scope: str,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> Tokens:
    """The tokens the provider gives for the authorization code."""
    client = _client(
        client_id=client_id, client_secret=client_secret, scope=scope, redirect_uri=redirect_uri
    )
    check_reachable(discovery.token_endpoint)
    client.register_compliance_hook("access_token_response", _refuse_redirect)
    try:
        token = client.fetch_token(
            discovery.token_endpoint,
            grant_type="authorization_code",
            code=code,
            code_verifier=code_verifier,
            timeout=TIMEOUT_SECONDS,
            # A redirect would carry the client secret and code to wherever it points.
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise ProviderUnavailable(
            f"The token endpoint could not be reached ({type(error).__name__})."
        ) from error
    except ProviderUnavailable:
        raise
    except Exception as error:  # Authlib's OAuthError and friends: the provider said no
        raise TokenRefused("code_refused", f"The provider refused the code: {error}") from error
    if not isinstance(token.get("id_token"), str):
        raise TokenRefused("no_id_token", "The provider sent no ID token.")
    return Tokens(id_token=token["id_token"], access_token=str(token.get("access_token") or ""))


def validate_id_token(
    id_token: str,
    *,
    jwks: dict[str, Any],
    issuer: str,
    client_id: str,
    nonce: str,
    now: int | None = None,
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, expiry and nonce hold."""
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (jose_errors.JoseError, ValueError, TypeError, KeyError) as error:
        raise ProviderUnavailable("The provider's signing keys (JWKS) are not usable.") from error
    try:
        token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    except jose_errors.BadSignatureError as error:
        raise TokenRefused("bad_signature", "The ID token's signature is not valid.") from error
    except (jose_errors.JoseError, ValueError) as error:
        raise TokenRefused("malformed", "The ID token could not be read.") from error
    registry = jwt.JWTClaimsRegistry(
        now=now if now is not None else int(time.time()),
        leeway=60,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(token.claims)
    except jose_errors.ExpiredTokenError as error:
        raise TokenRefused("expired", "The ID token has expired.") from error
    except jose_errors.ClaimError as error:
        claim = getattr(error, "claim", "") or "claim"
        raise TokenRefused(
            f"wrong_{claim}", f"The ID token's {claim} is not the one expected."
        ) from error
    azp = token.claims.get("azp")
    if (
        isinstance(token.claims.get("aud"), list)
        and len(token.claims["aud"]) > 1
        and azp != client_id
    ):
        raise TokenRefused("wrong_azp", "The ID token was issued to another client.")
    return dict(token.claims)


def provider_mfa(claims: dict[str, Any]) -> bool:
    """Did the provider assert a second factor (`amr`, or an `acr` naming MFA)?"""
    amr = claims.get("amr")
    if isinstance(amr, list) and MFA_AMR.intersection(str(value) for value in amr):
        return True
    acr = str(claims.get("acr") or "").lower().replace("-", "")
    return any(word in acr for word in ("mfa", "multifactor"))


# The ID token's own claims, which the userinfo endpoint may not override.
_PROTOCOL_CLAIMS = frozenset(
    {"iss", "aud", "sub", "exp", "iat", "nbf", "nonce", "azp", "amr", "acr"}
)


def with_userinfo(
    claims: dict[str, Any], discovery: Discovery, *, access_token: str
) -> dict[str, Any]:
    """The ID token's claims, completed from the userinfo endpoint when the provider keeps
    the profile there (OpenID Connect Core 5.4 for the code flow): same `sub` required."""
    if "email" in claims or not (discovery.userinfo_endpoint and access_token):
        return claims
    userinfo = fetch_json(discovery.userinfo_endpoint, access_token=access_token)
    if userinfo.get("sub") != claims["sub"]:
        raise TokenRefused("userinfo_sub", "The provider's userinfo is about someone else.")
    extra = {name: value for name, value in userinfo.items() if name not in _PROTOCOL_CLAIMS}
    return {**extra, **claims}
