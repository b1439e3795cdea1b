"""Base classes of the API's input schemas, shared by every app's `api` modules."""

from __future__ import annotations

from ninja import Schema
from pydantic import BaseModel, ConfigDict


class Strict(Schema):
    # A misspelt field is refused rather than silently ignored.
    model_config = ConfigDict(extra="forbid")


class StrictPlain(BaseModel):
    """`Strict` without django-ninja's `Schema`, for hot paths: `Schema` reads every field
    of every nested object through a Django-aware getter, which costs more than the
    decision itself in a batch of 100 authorize questions. Only for input that is plain
    JSON (nothing read from model instances)."""

    model_config = ConfigDict(extra="forbid")
