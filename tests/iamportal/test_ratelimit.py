"""The fixed-window rate limit on Django's cache."""

from __future__ import annotations

import uuid

import pytest

from iamportal import ratelimit
from iamportal.ratelimit import within_limit


def test_a_key_is_refused_past_its_limit_until_the_next_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, other = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_000_000.0)
    assert [within_limit(key, limit=2, window=60) for _ in range(3)] == [True, True, False]
    assert within_limit(other, limit=2, window=60)  # each key counts on its own
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_000_060.0)
    assert within_limit(key, limit=2, window=60)
