"""Names people type, checked for characters that do not belong in a one-line label.

Control characters (newline, tab, NUL...) break email headers and log lines; format
characters (bidi overrides, zero-width spaces) make a name display as something else.
"""

from __future__ import annotations

import unicodedata

# Control, format, surrogate, and the line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def unsafe_characters(text: str) -> list[str]:
    """The distinct characters of `text` that a one-line label must not hold, in order."""
    return list(dict.fromkeys(char for char in text if _unsafe(char)))


def one_line(text: str) -> str:
    """`text` with unsafe characters as spaces and runs of whitespace as one space: safe
    for an email subject whatever was stored before names were checked."""
    return " ".join("".join(" " if _unsafe(char) else char for char in text).split())
