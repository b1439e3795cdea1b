"""A change saved through its preview (policies.preview), for the views whose change
touches the same rules before and after: group membership, deleting a group or a policy,
suspending someone. Their form has a Preview button beside its submit button."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from django.http import HttpRequest, HttpResponse

from policies import preview
from policies.evaluator import CompiledRule

T = TypeVar("T")


def save_or_preview(
    request: HttpRequest,
    rules: Callable[[], Iterable[CompiledRule]],
    save: Callable[..., T],
    *,
    title: str,
    target: str,
    cancel_url: str,
) -> T | HttpResponse:
    """`save(preview=None)` for a plain submit. With Preview, the access diff it would make
    instead, nothing saved: `rules()` are the rules it touches (what a group's members
    hold through it, a suspended person's own), the same once it is made. Confirmed,
    `save(preview=<the diff>)` records the diff it was shown, unless the diff moved since:
    then it is shown again. A `ValidationError` of `save` (the delegation ceiling)
    propagates."""
    asked = preview.asked(request)
    if asked is None:
        return save(preview=None)

    def change() -> list[CompiledRule]:
        save(preview=None)
        return []

    diff = preview.access_diff(request, list(rules()), change)
    if asked == "confirm" and preview.confirms(request, diff):
        return save(preview=diff.audit_data())
    return preview.render_preview(
        request,
        diff,
        title=title,
        target=target,
        cancel_url=cancel_url,
        stale=asked == "confirm",
    )
