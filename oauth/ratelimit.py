"""A fixed-window counter in Django's cache (Redis when configured): enough to keep anonymous
registration from being used to fill a tenant's client table."""

from __future__ import annotations

import time

from django.core.cache import cache


def _key(bucket: str, window_seconds: int, now: int) -> str:
    return f"ratelimit:{bucket}:{now // window_seconds}"


def hit(bucket: str, limit: int, window_seconds: int) -> tuple[bool, int]:
    """Count one event in ``bucket``; return (allowed, seconds until the window resets)."""
    now = int(time.time())
    key = _key(bucket, window_seconds, now)
    cache.add(key, 0, timeout=window_seconds + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window_seconds + 5)
        count = 1
    return count <= limit, window_seconds - now % window_seconds


def reset(bucket: str, window_seconds: int) -> None:
    cache.delete(_key(bucket, window_seconds, int(time.time())))
