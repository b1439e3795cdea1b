"""Logging filters: secrets in URLs never reach the logs."""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# The secret path segment of each link sent by email (organizations/urls.py and
# accounts/urls.py): invitations, password set-up, password reset (uidb64/token).
_TOKEN_PATHS = re.compile(
    r"(?P<prefix>/invitations/|/accounts/password/set/|/accounts/password-reset/[^/\s?#\"']+/)"
    r"(?P<token>[^/\s?#\"']+)"
)
# Django's reset view redirects to `<uidb64>/set-password/` once it holds the token.
_NOT_TOKENS = {"set-password"}


def redact_paths(text: str) -> str:
    """`text` with the token of every link path replaced by `[redacted]`."""

    def replace(match: re.Match[str]) -> str:
        if match["token"] in _NOT_TOKENS:
            return match[0]
        return match["prefix"] + REDACTED

    return _TOKEN_PATHS.sub(replace, text)


class RedactTokensFilter(logging.Filter):
    """Redact link tokens in a record's message and arguments ("Not Found: /invitations/…",
    runserver's request lines); the record itself is always kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_paths(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_paths(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True
