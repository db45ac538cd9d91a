"""How many calls to one provider may be in flight at once, across every process of the platform:
``CONNECTORS_PROVIDER_CONCURRENCY`` slots per OAuth app at a provider (token endpoint + client id,
per tenant, as the breaker). A slow provider then holds at most that many threads; keep it below
the web threads of one process (``GUNICORN_THREADS``), so one provider can never hold them all.

A slot is a PostgreSQL session-level advisory lock (``pg_try_advisory_lock(space, slot)``), like the
refresh's single-flight guard: every process already talks to PostgreSQL (no Redis needed, and a
Redis outage cannot lift the bound), and a process that dies, or whose connection drops, frees its
slots at once because the server releases the locks with the session. A Redis semaphore would need
leases that either expire under a long call or outlive a crashed holder.

A tool call (web thread) tries every slot in one statement; when all are taken it waits at most
``CONNECTORS_PROVIDER_QUEUE_SECONDS`` (a burst against a healthy provider passes, a stuck one is
refused long before its calls time out) and is then refused with ``provider_busy``
(``CONNECTORS_PROVIDER_QUEUE_SECONDS``), without calling the provider. The proactive job
(``patient()``) queues for a slot up to one call deadline and never takes slot 0, which stays for
users. A slot is held for the HTTP call only (two short statements around it), not for the database
work of a refresh, so a fast provider is not slowed down by the bound.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction

from connectors.errors import ProviderUnavailable

# the proactive job's calls: they may wait longer and leave slot 0 to users
_patient: ContextVar[bool] = ContextVar("connectors_slots_patient", default=False)

# the first free slot in [first, last), trying them in order and stopping at the first it gets (a
# recursive CTE evaluates one row per step, so no lock is taken beyond the one returned)
_TRY_SLOTS = """
WITH RECURSIVE t(slot, got) AS (
  SELECT %(first)s, pg_try_advisory_lock(%(space)s, %(first)s)
  UNION ALL
  SELECT slot + 1, pg_try_advisory_lock(%(space)s, slot + 1) FROM t WHERE NOT got AND slot + 1 < %(last)s
)
SELECT slot FROM t WHERE got
"""


class ProviderBusy(ProviderUnavailable):
    def __init__(self) -> None:
        super().__init__("provider_busy", "too many calls to this provider are in flight; try again shortly")


def slot_space(key: str) -> int:
    """The advisory-lock space (first int4 key) of one provider app in the current schema."""
    raw = hashlib.sha256(f"connectors.slots:{connection.schema_name}:{key}".encode()).digest()
    return int.from_bytes(raw[:4], "big", signed=True)


@contextmanager
def patient() -> Iterator[None]:
    """The job's calls: a slot is waited for up to a call deadline, never slot 0."""
    token = _patient.set(True)
    try:
        yield
    finally:
        _patient.reset(token)


def _try(space: int, first: int, last: int) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(_TRY_SLOTS, {"space": space, "first": first, "last": last})
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _wait(space: int, slot: int, seconds: float) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{max(1, int(seconds * 1000))}ms"])
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [space, slot])
        return True
    except OperationalError:  # lock_timeout
        return False


def acquire(space: int, *, patient: bool) -> int:
    """Take a slot in ``space``; ``ProviderBusy`` when none frees in time. A tool call blocks on one
    slot (chosen at random) for a moment, then tries them all again, so it takes whichever slot
    frees first without polling the database in a tight loop. The job queues on one slot for the
    whole wait: PostgreSQL grants a lock to its waiters in order, so no batch starves."""
    size = max(1, int(settings.CONNECTORS_PROVIDER_CONCURRENCY))
    first = 1 if patient and size > 1 else 0
    wait = float(settings.CONNECTORS_HTTP_TIMEOUT_SECONDS if patient else settings.CONNECTORS_PROVIDER_QUEUE_SECONDS)
    if patient:
        taken = _try(space, first, size)
        if taken is None:
            taken = random.randrange(first, size)  # noqa: S311 (spreading waiters, not security)
            if not _wait(space, taken, wait):
                raise ProviderBusy()
        return taken
    deadline = time.monotonic() + wait
    while True:
        taken = _try(space, first, size)
        if taken is not None:
            return taken
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderBusy()
        taken = random.randrange(first, size)  # noqa: S311 (spreading waiters, not security)
        if _wait(space, taken, min(remaining, random.uniform(0.05, 0.15))):  # noqa: S311
            return taken


def release(space: int, slot: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [space, slot])
    except DatabaseError:  # the session is broken: closing it is what releases the lock
        connection.close()


@contextmanager
def slot(key: str) -> Iterator[None]:
    """Hold a slot of provider app ``key`` (see ``connectors.breaker.breaker_key``) for one call."""
    space = slot_space(key)
    taken = acquire(space, patient=_patient.get())
    try:
        yield
    finally:
        release(space, taken)
