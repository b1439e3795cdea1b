"""One-time tokens for links sent by email (password set-up, invitations), and the
digest of MFA backup codes.

The raw token travels only in the link; the database keeps its SHA-256. Tokens carry
256 bits of randomness, so a fast digest is enough, and a lookup by digest reveals
nothing about the other tokens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from base64 import urlsafe_b64encode

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import PasswordToken, User

PASSWORD_TOKEN_LIFETIME = dt.timedelta(hours=72)


def new_token() -> tuple[str, str]:
    """A fresh (raw token, digest) pair."""
    raw = secrets.token_urlsafe(32)
    return raw, token_digest(raw)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def backup_code_digest(code: str) -> str:
    """What is stored for a backup code: an HMAC keyed by SECRET_KEY, 96 bits in 16
    characters (django-otp's token column holds 16).

    Codes have only 40 random bits, so a plain hash of a stolen table would be reversed
    by brute force; keyed, it is useless without the server's secret too. Unsalted, so
    the typed code is found with one exact lookup and django-otp's single use holds.
    """
    digest = salted_hmac("accounts.mfa.backup_code", code, algorithm="sha256").digest()
    return urlsafe_b64encode(digest[:12]).decode()


@transaction.atomic
def password_token_issue(*, user: User, lifetime: dt.timedelta = PASSWORD_TOKEN_LIFETIME) -> str:
    """A new password link for `user`; earlier unused links die with it."""
    now = timezone.now()
    PasswordToken.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
    raw, digest = new_token()
    PasswordToken.objects.create(user=user, token_hash=digest, expires_at=now + lifetime)
    return raw


def password_token_find(raw: str) -> PasswordToken | None:
    """The live token for `raw`, or None when unknown, used or expired."""
    if not raw or len(raw) > 128:
        return None
    # Found by its digest (see the module docstring): no secret is compared in Python.
    return (
        PasswordToken.objects.select_related("user")
        .filter(token_hash=token_digest(raw), used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
