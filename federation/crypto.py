"""Provider secrets encrypted at rest with the instance's `IAMPORTAL_SECRETS_KEY`."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError


def _fernet() -> Fernet:
    key = getattr(settings, "IAMPORTAL_SECRETS_KEY", "")
    if not key:
        raise ImproperlyConfigured(
            "IAMPORTAL_SECRETS_KEY is not set: single sign-on secrets cannot be stored or read. "
            "Set it to a Fernet key (see README, environment)."
        )
    try:
        return Fernet(key.encode())
    except ValueError as error:
        raise ImproperlyConfigured(
            "IAMPORTAL_SECRETS_KEY is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from error


def encrypt(secret: str) -> str:
    if not getattr(settings, "IAMPORTAL_SECRETS_KEY", ""):
        # Production without the key: the form says so rather than failing.
        raise ValidationError(
            "This server cannot store single sign-on secrets yet: its operator must set "
            "IAMPORTAL_SECRETS_KEY (see the README's environment)."
        )
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "A provider secret cannot be decrypted with IAMPORTAL_SECRETS_KEY "
            "(was the key changed?)."
        ) from error
