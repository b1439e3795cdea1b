"""MFA test helpers: codes are computed with pyotp from the device's secret."""

from __future__ import annotations

import time
from base64 import b32encode
from datetime import datetime, timedelta

import pyotp
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.sudo import SESSION_KEY as SUDO_SESSION_KEY
from accounts.tokens import backup_code_digest
from tests.factories import PASSWORD


def totp_for(device: TOTPDevice) -> pyotp.TOTP:
    return pyotp.TOTP(b32encode(device.bin_key).decode(), interval=device.step)


def code(device: TOTPDevice, steps: int = 0) -> str:
    """The code of the current time step, or `steps` steps away (drift)."""
    return totp_for(device).at(time.time() + steps * device.step)


def enroll(user: User, backup_codes: tuple[str, ...] = ()) -> TOTPDevice:
    """A confirmed authenticator (and optionally backup codes, stored as digests) for `user`."""
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    if backup_codes:
        static = StaticDevice.objects.create(user=user, name="Backup codes", confirmed=True)
        for token in backup_codes:
            StaticToken.objects.create(device=static, token=backup_code_digest(token))
    return device


def password_step(client: Client, email: str, password: str = PASSWORD, **extra: str):
    return client.post(
        reverse("accounts:login"), {"username": email, "password": password}, **extra
    )


def code_step(client: Client, value: str):
    return client.post(reverse("accounts:mfa_verify"), {"code": value})


def unthrottle(device: TOTPDevice | StaticDevice) -> None:
    """Move the last failure into the past, as if the throttle delay had passed."""
    device.refresh_from_db()
    if device.throttling_failure_timestamp is not None:
        device.throttling_failure_timestamp = device.throttling_failure_timestamp.replace(
            year=device.throttling_failure_timestamp.year - 1
        )
        device.save()


def expire_sudo(client: Client) -> None:
    session = client.session
    session.pop(SUDO_SESSION_KEY, None)
    session.save()


class Clock:
    """Django's clock stopped, moved on by hand: django-otp's throttle reads it
    (`timezone.now`), while TOTP codes keep following the real `time.time()`."""

    def __init__(self, monkeypatch) -> None:
        self.now: datetime = timezone.now()
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
