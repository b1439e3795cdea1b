"""System check policies.E001: every URL's view declares its access."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.checks import Error, Tags, register
from django.urls import URLPattern, URLResolver, get_resolver

# The admin guards itself (staff and, later, OTP verification).
EXEMPT_NAMESPACES = {"admin"}


def _patterns(
    resolver: URLResolver, prefix: str = "", namespace: str | None = None
) -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            if ns in EXEMPT_NAMESPACES:
                continue
            yield from _patterns(entry, prefix + str(entry.pattern), ns)
        else:
            yield prefix + str(entry.pattern), entry


@register(Tags.security, Tags.urls)
def check_views_declare_access(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    for route, pattern in _patterns(get_resolver()):
        callback = pattern.callback
        if getattr(callback, "iam_access", None) is None:
            errors.append(
                Error(
                    f"The view for URL '{route}' declares no access rule.",
                    hint=(
                        "Decorate it with @requires('service:resource:verb'), @signed_in "
                        "or @public from policies.guards."
                    ),
                    obj=f"{callback.__module__}.{getattr(callback, '__qualname__', callback)}",
                    id="policies.E001",
                )
            )
    return errors
