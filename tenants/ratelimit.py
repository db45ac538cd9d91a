"""Fixed-window counters in Django's cache (Redis when configured): the platform's one limiter, for
the token endpoint and registration (``oauth.views``) and the login limits (``tenants.login_limits``).
Keys carry the tenant's schema (the cache's key function), so every tenant counts on its own.

When Redis does not answer, the counters fail open: the request is allowed (a read counts 0),
``rate_limit_unavailable`` is sent (``platform_rate_limit_unavailable`` in metrics) and a warning
logged (at most once a minute per process). A limiter outage must not turn into an outage of the
token endpoint, where every client's refresh would fail and its user lose the session; the limits
are a ceiling against abuse, not an authorization check."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from redis.commands.core import Script
from redis.exceptions import RedisError

from tenants.signals import rate_limit_unavailable

log = logging.getLogger(__name__)
_LOG_EVERY_SECONDS = 60
_last_logged = 0.0


def _key(bucket: str, window_seconds: int, now: int) -> str:
    return f"ratelimit:{bucket}:{now // window_seconds}"


def _store_unavailable(buckets: Sequence[str], exc: Exception) -> None:
    global _last_logged
    tenant = connection.schema_name
    for bucket in buckets:
        rate_limit_unavailable.send(sender=__name__, tenant=tenant, limit=bucket.split(":", 1)[0])
    if time.monotonic() - _last_logged >= _LOG_EVERY_SECONDS:
        _last_logged = time.monotonic()
        log.warning("rate limits skipped: the counter store did not answer (%s)", type(exc).__name__)


def hit(bucket: str, limit: int, window_seconds: int) -> tuple[bool, int]:
    """Count one event in ``bucket``; return (allowed, seconds until the window resets)."""
    return hit_all([(bucket, limit, window_seconds)])


def hit_all(limits: Sequence[tuple[str, int, int]]) -> tuple[bool, int]:
    """Count one event in each ``(bucket, limit, window_seconds)``; (False, its retry delay) for the
    first bucket over its limit, else (True, 0). Every bucket is counted, refused or not."""
    now = int(time.time())
    counts = increment([(bucket, window) for bucket, _, window in limits], now=now)
    for count, (_, limit, window) in zip(counts, limits, strict=True):
        if count > limit:
            return False, window - now % window
    return True, 0


def increment(buckets: Sequence[tuple[str, int]], *, now: int | None = None) -> list[int]:
    """Count one event in each ``(bucket, window_seconds)``; their counts in this window, in order
    (zeros when the store does not answer: fail open).

    On Redis this is one round trip, one small Lua script (``SET NX EX`` and ``INCR`` per bucket, atomic)
    instead of two commands per bucket through the cache API: the token endpoint pays it on every
    request, and under load each round trip costs a wait for the CPU as well. Keys are the cache's
    own (tenant-prefixed), so ``current`` and ``reset`` see the same counters."""
    now = int(time.time()) if now is None else now
    try:
        return _increment(buckets, now)
    except RedisError as exc:
        _store_unavailable([bucket for bucket, _ in buckets], exc)
        return [0] * len(buckets)


def current(bucket: str, window_seconds: int) -> int:
    """Events counted in ``bucket`` in this window, without counting one (0 when the store does not
    answer: fail open)."""
    try:
        return int(cache.get(_key(bucket, window_seconds, int(time.time())), 0))
    except RedisError as exc:
        _store_unavailable([bucket], exc)
        return 0


def retry_after(window_seconds: int) -> int:
    """Seconds until the current window of ``window_seconds`` ends."""
    return window_seconds - int(time.time()) % window_seconds


def _increment_one(bucket: str, window_seconds: int, now: int) -> int:
    key = _key(bucket, window_seconds, now)
    cache.add(key, 0, timeout=window_seconds + 5)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window_seconds + 5)
        return 1


# Each key: created at 0 with its window's expiry unless it exists, then incremented; the counts in order.
_COUNT_ALL = """
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'EX', ARGV[i], 'NX')
  counts[i] = redis.call('INCR', key)
end
return counts
"""
_scripts: dict[int, tuple[object, Script]] = {}


def _count_all_script(backend: RedisCache) -> Script:
    """``_COUNT_ALL`` on the cache's write connection pool: one client and one script object per pool
    (the cache API makes a client per call), sent as ``EVALSHA`` (redis-py loads it once if needed)."""
    pool = backend._cache._get_connection_pool(True)
    found = _scripts.get(id(pool))
    if found is None or found[0] is not pool:
        client = backend._cache._client(connection_pool=pool)
        found = _scripts[id(pool)] = (pool, client.register_script(_COUNT_ALL))
    return found[1]


def _increment(buckets: Sequence[tuple[str, int]], now: int) -> list[int]:
    backend = caches["default"]  # ``cache`` is a proxy to it
    if not isinstance(backend, RedisCache):
        return [_increment_one(bucket, window, now) for bucket, window in buckets]
    keys = [backend.make_and_validate_key(_key(bucket, window, now)) for bucket, window in buckets]
    return [int(n) for n in _count_all_script(backend)(keys=keys, args=[window + 5 for _, window in buckets])]


def reset(bucket: str, window_seconds: int) -> None:
    cache.delete(_key(bucket, window_seconds, int(time.time())))
