"""The names people give to what they create (projects, groups, applications, policies):
trimmed, bounded, and unique in their organization whatever the case."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet


def unique_name(
    name: str,
    *,
    taken: QuerySet,
    exclude: Model | None,
    what: str,
    max_length: int | None = None,
    reserved: Iterable[str] = (),
) -> str:
    """`name` without surrounding spaces, or a ValidationError on the `name` field: empty,
    longer than `max_length`, or already the name (ignoring case) of a row of `taken`
    other than `exclude`, or of `reserved`. `what` names the thing with its article
    ("a project", "an application")."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": f"Enter {what} name."})
    if max_length is not None and len(name) > max_length:
        raise ValidationError(
            {"name": f"{what.capitalize()} name is at most {max_length} characters."}
        )
    clash = taken.filter(name__iexact=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists() or name.lower() in {other.lower() for other in reserved}:
        raise ValidationError({"name": f'{what.capitalize()} named "{name}" already exists.'})
    return name
