"""Walk the URL conf and tell which views accept writes (POST, PUT, PATCH, DELETE).

A view's methods are read from what Django's decorators leave behind: the method list
that `require_http_methods` (and `require_POST`, `require_GET`, `require_safe`) closes
over, anywhere in the chain of `functools.wraps` wrappers, or a class-based view's
`http_method_names` and handlers. A view that declares nothing accepts every method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALL_METHODS = frozenset({"GET", "HEAD", "OPTIONS", *WRITE_METHODS})


@dataclass(frozen=True)
class Route:
    name: str  # namespaced URL name, e.g. "audit:verify" (or the route when unnamed)
    route: str  # the full route, for messages
    callback: Callable[..., Any]
    methods: frozenset[str]

    @property
    def writes(self) -> frozenset[str]:
        return self.methods & WRITE_METHODS


def _declared_methods(view: Callable[..., Any]) -> frozenset[str] | None:
    """The methods a decorated function view accepts, or None when it declares none."""
    seen: set[int] = set()
    func: Any = view
    while func is not None and id(func) not in seen:
        seen.add(id(func))
        code = getattr(func, "__code__", None)
        closure = getattr(func, "__closure__", None) or ()
        if code is not None:
            for name, cell in zip(code.co_freevars, closure, strict=False):
                if name == "request_method_list":
                    return frozenset(m.upper() for m in cell.cell_contents)
        func = getattr(func, "__wrapped__", None)
    return None


def methods_of(view: Callable[..., Any]) -> frozenset[str]:
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        names = {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)}
        return frozenset(names) & ALL_METHODS
    declared = _declared_methods(view)
    return declared if declared is not None else ALL_METHODS


def routes(resolver: URLResolver | None = None) -> Iterator[Route]:
    """Every URL pattern with its namespaced name and the methods its view accepts."""

    def walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[Route]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                ns = namespace
                if pattern.namespace:
                    ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                yield from walk(pattern.url_patterns, route, ns)
            elif isinstance(pattern, URLPattern):
                name = pattern.name or route
                if pattern.name and namespace:
                    name = f"{namespace}:{pattern.name}"
                yield Route(name, route, pattern.callback, methods_of(pattern.callback))

    yield from walk((resolver or get_resolver()).url_patterns, "", "")
