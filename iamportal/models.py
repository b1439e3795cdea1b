"""The project's own table: the shared rate-limit counter (iamportal.ratelimit)."""

from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """One row per bucket (a scope and an identity, e.g. "api:key:<pk>"), not per window:
    the row is reset in place when a new window begins, so the table holds at most one row
    per identity active in the last windows (older ones are purged)."""

    bucket = models.CharField(max_length=200, primary_key=True)
    # The epoch second at which the counted window ends (not its index: buckets may use
    # windows of different lengths, and one purge must compare them all); "window" itself
    # is an SQL keyword.
    period_end = models.BigIntegerField(db_index=True)
    count = models.PositiveIntegerField()

    class Meta:
        db_table = "iamportal_ratecounter"

    def __str__(self) -> str:
        return f"{self.bucket}: {self.count} until {self.period_end}"
