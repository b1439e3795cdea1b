"""The tags of resources and of principals (users, applications): key -> value strings, as
services store them, selectors search them and policy conditions read them
(`resource.tags`, `principal.tags`): one set of rules for all of them."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

from iamportal.text import unsafe_characters

TAGS_MAX = 50
TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/+=@-]{1,64}$")
TAG_VALUE_MAX_LENGTH = 256


def check_tags(tags: Any) -> dict[str, str]:
    """Tags are matched by policy conditions, so only plain string pairs are stored."""
    if not isinstance(tags, dict):
        raise ValidationError({"tags": "Tags are an object of key -> value strings."})
    if len(tags) > TAGS_MAX:
        raise ValidationError({"tags": f"There can be at most {TAGS_MAX} tags."})
    for key, value in tags.items():
        if not isinstance(key, str) or not TAG_KEY.match(key):
            raise ValidationError(
                {"tags": f'Tag key "{key}" must be 1 to 64 letters, digits or _ . : / + = @ -.'}
            )
        # Control characters (NUL above all, which PostgreSQL's jsonb refuses) never.
        if (
            not isinstance(value, str)
            or len(value) > TAG_VALUE_MAX_LENGTH
            or unsafe_characters(value)
        ):
            raise ValidationError(
                {
                    "tags": f'Tag "{key}" needs a string value of at most '
                    f"{TAG_VALUE_MAX_LENGTH} characters, on one line."
                }
            )
    return dict(tags)
