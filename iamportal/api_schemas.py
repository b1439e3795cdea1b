"""Base classes of the API's input schemas, shared by every app's `api` modules."""

from __future__ import annotations

from typing import Any

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


def patched(patch: BaseModel, current: object, *fields: str) -> dict[str, Any]:
    """A PATCH body's `fields`, each absent (None) one kept at its `current` value."""
    values = {field: getattr(patch, field) for field in fields}
    return {
        field: getattr(current, field) if value is None else value
        for field, value in values.items()
    }
