"""The project package as an app: it owns the shared rate-limit counter
(iamportal.models.RateCounter, counted by iamportal.ratelimit)."""

from __future__ import annotations

import sqlite3
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

# The counter's one statement is an upsert with RETURNING (iamportal.ratelimit).
SQLITE_MINIMUM = (3, 35, 0)


class IamPortalConfig(AppConfig):
    name = "iamportal"
    label = "iamportal"
    verbose_name = "IAM Portal"

    def ready(self) -> None:
        checks.register(check_sqlite_version)


def check_sqlite_version(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """SQLite before 3.35 has no RETURNING: every rate-limited request would fail."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine.endswith("sqlite3") and sqlite3.sqlite_version_info < SQLITE_MINIMUM:
        return [
            checks.Error(
                f"SQLite {sqlite3.sqlite_version} is too old: the rate limits need "
                f"{'.'.join(map(str, SQLITE_MINIMUM))} or later (upsert with RETURNING).",
                id="iamportal.E001",
            )
        ]
    return []
