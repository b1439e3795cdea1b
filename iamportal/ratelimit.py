"""A fixed-window rate limit on Django's cache, for views that cost the server more
than a page (the condition tester runs arbitrary conditions).

The counts live in the default cache: with the default `LocMemCache` each process keeps
its own (a client spread over N workers gets up to N times the limit), with a shared
backend (Redis, Memcached, the database cache) every process shares one count. A fixed
window lets a client spend up to twice the limit across a window boundary; that is
enough to keep a worker from being monopolised, which is all it is for.
"""

from __future__ import annotations

import time

from django.core.cache import cache


def within_limit(key: str, *, limit: int, window: int) -> bool:
    """Count one use of `key`; False once `limit` uses were already counted in the
    current `window` seconds (then the use is refused and still counted)."""
    bucket = f"ratelimit:{key}:{int(time.time() // window)}"
    cache.add(bucket, 0, timeout=window)
    try:
        count = cache.incr(bucket)
    except ValueError:  # the bucket expired between add and incr: a new window began
        cache.add(bucket, 1, timeout=window)
        count = 1
    return count <= limit
