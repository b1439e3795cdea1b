"""MFA on django-otp: one TOTP authenticator per account plus ten one-time backup codes.

Backup codes are shown once; django-otp's StaticToken rows hold only their keyed digest
(accounts.tokens.backup_code_digest), and a typed code is checked by its digest.

Codes are always checked through `django_otp.verify_token`, which loads the device
`select_for_update` in a transaction, so django-otp's replay protection (a TOTP code
works once: `last_t`), its drift tolerance (one 30-second step either way) and its
throttling (1, 2, 4, 8… seconds after each wrong code) hold under concurrency.
"""

from __future__ import annotations

import math
import re
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime

import segno
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp import verify_token
from django_otp.models import Device, VerifyNotAllowed
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.sessions import sessions_end_others
from accounts.tokens import backup_code_digest
from accounts.trail import record_account_event
from audit import events

TOTP_NAME = "Authenticator app"
BACKUP_NAME = "Backup codes"
_SEPARATORS = re.compile(r"[\s-]+")

WRONG_CODE = (
    "That code is not valid. Codes change every 30 seconds and each one works only once: "
    "enter the current code from your app, or one of your backup codes."
)


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of checking a code: the device that accepted it, or why not.

    `throttled`: no code was checked, the device's delay after a wrong code still runs.
    """

    device: Device | None
    error: str = ""
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.device is not None

    @property
    def used_backup_code(self) -> bool:
        return isinstance(self.device, StaticDevice)


def totp_device_of(user: User, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).order_by("-pk").first()


def has_mfa(user: User) -> bool:
    """Whether the account has a confirmed authenticator (backup codes alone do not count)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def secret_of(device: TOTPDevice) -> str:
    """The base32 secret as authenticator apps take it, in groups of four for reading."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code (no inline style: strict CSP)."""
    qr = segno.make(device.config_url, error="m")
    return qr.svg_inline(
        scale=4, dark="#000000", light="#ffffff", svgclass="qr-code", title="QR code"
    )


def _normalise(code: str) -> str:
    return _SEPARATORS.sub("", code or "").lower()


def _time_until(until: datetime) -> str:
    whole = max(1, math.ceil((until - timezone.now()).total_seconds()))
    return f"{whole} second{'s' if whole != 1 else ''}"


def _throttled_message(data: dict | None) -> str:
    """Why no code was checked: the delay django-otp sets after wrong codes (1, 2, 4…
    seconds), with the time it still runs and the wrong codes behind it."""
    until: datetime | None = (data or {}).get("locked_until")
    if data and data.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS and until:
        count = int(data.get("failure_count") or 1)
        wrong = "The last code was wrong" if count == 1 else f"{count} wrong codes in a row"
        return f"{wrong}: wait {_time_until(until)}, then enter the current code."
    return "Codes cannot be checked right now. Try again in a moment."


def _wrong_code_message(device: Device, message: str) -> str:
    """`message`, and how long the next try waits when django-otp's throttle applies."""
    device.refresh_from_db()  # django-otp counted the wrong code on its locked copy
    allowed, data = device.verify_is_allowed()
    until: datetime | None = None if allowed else (data or {}).get("locked_until")
    return f"{message} You can try again in {_time_until(until)}." if until else message


def check_code(user: User, code: str, *, request: HttpRequest | None) -> CodeCheck:
    """Check a TOTP code (six digits) or a backup code against the user's devices.

    A wrong code counts against the device's throttle (django-otp) and is audited; while
    the delay it sets runs, no code is checked, not even a right one, and the refusal
    does not count as a wrong code (it lengthens nothing).
    """
    token = _normalise(code)
    if not token:
        return CodeCheck(None, "Enter the code from your authenticator app or a backup code.")
    if token.isdigit() and len(token) == 6:
        device: Device | None = totp_device_of(user)
    else:
        device = StaticDevice.objects.filter(user=user, confirmed=True).first()
    verified = None
    if device is not None:
        allowed, data = device.verify_is_allowed()
        if not allowed:
            return CodeCheck(None, _throttled_message(data), throttled=True)
        if isinstance(device, StaticDevice):
            token = backup_code_digest(token)
        verified = verify_token(user, device.persistent_id, token)
    if verified is None:
        record_account_event(action=events.AUTH_MFA_FAILED, account=user, request=request)
        error = WRONG_CODE if device is None else _wrong_code_message(device, WRONG_CODE)
        return CodeCheck(None, error)
    return CodeCheck(verified)


# Enrollment and management (services)


@transaction.atomic
def mfa_enrollment_start(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator being set up: the same secret until confirmed."""
    if has_mfa(user):
        raise ValidationError("An authenticator app is already set up for this account.")
    device = totp_device_of(user, confirmed=False)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def _new_backup_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=BACKUP_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.MFA_BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=backup_code_digest(code)) for code in codes
    )
    return codes


def mfa_enrollment_confirm(*, user: User, code: str, request: HttpRequest) -> list[str]:
    """Activate the authenticator once a code from it checks; returns new backup codes.

    The session counts as verified with MFA from then on.
    """
    device = totp_device_of(user, confirmed=False)
    if device is None:
        raise ValidationError("Start again: the setup expired or is already finished.")
    token = _normalise(code)
    allowed, data = device.verify_is_allowed()
    if not allowed:
        raise ValidationError({"code": _throttled_message(data)})
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not (token.isdigit() and len(token) == 6 and locked.verify_token(token)):
            verified = False
        else:
            verified = True
            locked.confirmed = True
            # The enrollment time is when it was confirmed, not when setup began.
            locked.created_at = timezone.now()
            locked.save()
            TOTPDevice.objects.filter(user=user).exclude(pk=locked.pk).delete()
            codes = _new_backup_codes(user)
            record_account_event(
                action=events.AUTH_MFA_ENROLLED, account=user, actor=user, request=request
            )
    if not verified:
        wrong = "That code does not match. Enter the current code your app shows."
        raise ValidationError({"code": _wrong_code_message(device, wrong)})
    otp_login(request, locked)
    return codes


@transaction.atomic
def mfa_backup_codes_regenerate(*, user: User, request: HttpRequest) -> list[str]:
    """Replace every backup code; the old ones stop working at once."""
    if not has_mfa(user):
        raise ValidationError("Set up an authenticator app first.")
    codes = _new_backup_codes(user)
    record_account_event(
        action=events.AUTH_MFA_BACKUP_CODES_REGENERATED, account=user, actor=user, request=request
    )
    return codes


def mfa_remove(*, user: User, code: str, request: HttpRequest) -> None:
    """Remove the authenticator and the backup codes after a code proves possession.

    The user's other sessions end: whoever else was signed in must sign in again.
    """
    if not has_mfa(user):
        raise ValidationError("No authenticator app is set up.")
    result = check_code(user, code, request=request)
    if not result.ok:
        raise ValidationError({"code": result.error})
    with transaction.atomic():
        mfa_devices_delete(user=user)
        record_account_event(
            action=events.AUTH_MFA_REMOVED, account=user, actor=user, request=request
        )
        sessions_end_others(user=user, keep=request.session.session_key)


def mfa_devices_delete(*, user: User) -> None:
    """Delete every device of the account (its owner's removal, an administrator's reset)."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def is_verified(request: HttpRequest) -> bool:
    """Whether this session signed in (or stepped up) with a second factor."""
    user = getattr(request, "user", None)
    checker = getattr(user, "is_verified", None)
    return bool(checker and user.is_authenticated and checker())


def operator_totp_setup(*, user: User) -> tuple[str, str]:
    """Give an operator a confirmed authenticator for `/admin/` (for `seed_demo`).

    Idempotent: an existing authenticator is kept. Returns the base32 secret (for
    people to type into an app) and the otpauth:// URL.
    """
    device = totp_device_of(user)
    if device is None:
        with transaction.atomic():
            TOTPDevice.objects.filter(user=user).delete()
            device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=True)
    return secret_of(device).replace(" ", ""), device.config_url
