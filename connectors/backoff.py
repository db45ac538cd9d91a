"""How long the connectors' jobs wait before trying again what failed: exponential backoff with
jitter (half fixed, half random), capped. A refresh that failed for want of an answer waits up to
``CONNECTORS_REFRESH_BACKOFF_MAX_SECONDS``; a revocation (an account's or a retired grant's) up to
``CONNECTORS_REVOCATION_BACKOFF_MAX_SECONDS``. Both start at ``CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS``."""

from __future__ import annotations

import random
from datetime import timedelta

from django.conf import settings


def backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row."""
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (jitter, not security)


def refresh_retry(failures: int) -> timedelta:
    return _wait(failures, cap=settings.CONNECTORS_REFRESH_BACKOFF_MAX_SECONDS)


def revocation_retry(attempts: int) -> timedelta:
    return _wait(attempts, cap=settings.CONNECTORS_REVOCATION_BACKOFF_MAX_SECONDS)


def _wait(failures: int, *, cap: float) -> timedelta:
    return timedelta(seconds=backoff_delay(failures, base=settings.CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS, cap=cap))
