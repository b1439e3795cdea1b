"""What HTML built in Python needs once per page rather than once per row.

Django's `reverse` costs about 50 µs a call, and `{% csrf_token %}` renders a template
node: a table with a link and a form per row paid both on every row. `link` reverses a
URL once per process with placeholder ids and fills them in; `csrf_input` is the hidden
input, made once for all of a page's forms.
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

# Placeholders no real object has: ids 1, 2, 3… of the all-zero UUID's family.
_SLOTS = tuple(str(UUID(int=n)) for n in range(1, 6))


@lru_cache(maxsize=512)
def _pattern(name: str, script_prefix: str, count: int) -> str:
    # Keyed on the script prefix too: `reverse` prepends it.
    return reverse(name, args=_SLOTS[:count])


def link(name: str, *ids: object) -> str:
    """`reverse(name, args=ids)` for ids (UUIDs), from a per-process cache."""
    url = _pattern(name, get_script_prefix(), len(ids))
    for slot, value in zip(_SLOTS, ids, strict=False):
        url = url.replace(slot, str(value))
    return url


def csrf_input(request: HttpRequest) -> SafeString:
    """`{% csrf_token %}`'s hidden input, made once for the forms of a page's rows."""
    return format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
    )
