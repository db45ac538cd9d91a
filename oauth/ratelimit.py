"""A fixed-window counter in Django's cache (Redis when configured): enough to keep anonymous
registration from being used to fill a tenant's client table, and to put a ceiling on the token
endpoint."""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache


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


def hit_all(limits: Sequence[tuple[str, int, int]]) -> tuple[bool, int]:
    """Count one event in each ``(bucket, limit, window_seconds)``; (False, its retry delay) for the
    first bucket over its limit, else (True, 0). Every bucket is counted, refused or not.

    On Redis this is one round trip (a pipeline of ``SET NX EX`` and ``INCR`` per bucket) instead of two
    per bucket through the cache API: the token endpoint pays it on every request, and under load each
    round trip costs a wait for the CPU as well. Keys are the cache's own (tenant-prefixed), so ``hit``
    and ``reset`` see the same counters."""
    now = int(time.time())
    backend = caches["default"]  # ``cache`` is a proxy to it
    if not isinstance(backend, RedisCache):
        for bucket, limit, window in limits:
            allowed, retry_after = hit(bucket, limit, window)
            if not allowed:
                return False, retry_after
        return True, 0
    keys = [backend.make_and_validate_key(_key(bucket, window, now)) for bucket, _, window in limits]
    # the cache API has no pipeline; its client factory (Django's RedisCacheClient) hands out the client
    pipe = backend._cache.get_client(keys[0], write=True).pipeline(transaction=False)
    for key, (_, _, window) in zip(keys, limits, strict=True):
        pipe.set(key, 0, ex=window + 5, nx=True)
        pipe.incr(key)
    counts = pipe.execute()[1::2]
    for count, (_, limit, window) in zip(counts, limits, strict=True):
        if count > limit:
            return False, window - now % window
    return True, 0


def reset(bucket: str, window_seconds: int) -> None:
    cache.delete(_key(bucket, window_seconds, int(time.time())))
