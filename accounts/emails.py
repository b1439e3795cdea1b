"""The one canonical spelling of an email address, applied where an address comes in.

Accounts, invitations and the lock-out counter all key on it, and look it up exactly:
one mailbox has one spelling, so look-alike spellings can neither reach an account
nor get a lock-out counter of their own.

- The local part must be plain ASCII as typed. Unicode lower-casing and the
  database's case-insensitive comparisons fold look-alikes (dotless i, long s, the
  Kelvin sign) onto ASCII letters, so they are refused rather than guessed at.
- The domain goes through NFKC and IDNA 2003 (Python's `idna` codec, whose nameprep
  maps `ß` to `ss`, drops soft hyphens and folds fullwidth letters and dots), then is
  lower-cased, so every spelling of one domain gives the same ASCII (punycode) form.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# RFC 5321's limit on a forward path; longer input is refused before any Unicode work.
MAX_LENGTH = 254

NON_ASCII_LOCAL_PART = (
    "Use only plain (ASCII) letters, digits and . _ + - before the @: accented and "
    "look-alike letters are not accepted in email addresses here."
)
INVALID = "Enter a valid email address."


def canonical_email(value: str) -> str:
    """The canonical form of `value`: ASCII local part and IDNA domain, lower-cased.

    Raises ValidationError (code "invalid") when there is no such form or the result is
    not a valid address.
    """
    text = (value or "").strip()
    if not text or len(text) > MAX_LENGTH * 4 or "@" not in text:
        raise ValidationError(INVALID, code="invalid")
    local, _, domain = text.rpartition("@")
    if not local.isascii():
        raise ValidationError(NON_ASCII_LOCAL_PART, code="invalid")
    if not local.isprintable() or not domain:
        raise ValidationError(INVALID, code="invalid")
    try:
        ascii_domain = unicodedata.normalize("NFKC", domain).encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(INVALID, code="invalid") from None
    email = f"{local.lower()}@{ascii_domain.lower().rstrip('.')}"
    if len(email) > MAX_LENGTH:
        raise ValidationError(INVALID, code="invalid")
    validate_email(email)
    return email


def canonical_email_or_none(value: str) -> str | None:
    """`canonical_email(value)`, or None when the address has no canonical form."""
    try:
        return canonical_email(value)
    except ValidationError:
        return None
