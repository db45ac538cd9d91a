"""A fixed-window counter in Django's cache (Redis when configured): enough to keep anonymous
registration from being used to fill a tenant's client table."""

from __future__ import annotations

import time

from django.core.cache import cache


def hit(bucket: str, limit: int, window_seconds: int) -> tuple[bool, int]:
    """Count one event in ``bucket``; return (allowed, seconds until the window resets)."""
    now = int(time.time())
    window = now // window_seconds
    key = f"ratelimit:{bucket}:{window}"
    cache.add(key, 0, timeout=window_seconds + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window_seconds + 5)
        count = 1
    return count <= limit, (window + 1) * window_seconds - now
