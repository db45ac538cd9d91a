"""How the connectors' jobs take up again what failed. Rows due for another attempt are claimed in
batches (``claim_due``: ``SKIP LOCKED``, then a committed lease), so two workers never take the same
one; a failure waits before the next attempt: exponential backoff with jitter (half fixed, half
random), capped. A refresh that failed for want of an answer waits up to
``CONNECTORS_REFRESH_BACKOFF_MAX_SECONDS``; a revocation (an account's or a retired grant's) up to
``CONNECTORS_REVOCATION_BACKOFF_MAX_SECONDS``. Both start at ``CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS``."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet


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


def claim_due(rows: QuerySet, *, field: str, now: datetime, size: int) -> list[int]:
    """Lease up to ``size`` of ``rows`` whose next attempt (``field``) is unset or past, by primary key:
    ``field`` moves ``CONNECTORS_REFRESH_LEASE_SECONDS`` ahead, committed before any provider call (a
    worker killed mid-batch leaves its rows to the next run). Returns their primary keys."""
    with transaction.atomic():
        batch = list(
            rows.select_for_update(skip_locked=True, of=("self",))
            .filter(Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lte": now}))
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        lease = now + timedelta(seconds=settings.CONNECTORS_REFRESH_LEASE_SECONDS)
        rows.model.objects.filter(pk__in=batch).update(**{field: lease})
    return batch
