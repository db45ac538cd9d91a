"""The connectors' notion of "now": every refresh-timing, backoff and breaker decision reads it here.

In production it is ``django.utils.timezone.now()``. Tests and benchmarks that check behaviour over
token lifetimes of an hour (refreshes per account per hour, a breaker's cool-down) move it forward
with ``advance`` instead of sleeping; it moves for every thread of the process (the live test server
included) and nothing else: the database's ``now()`` is never used for these decisions, the time
is always passed in from here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_lock = threading.Lock()
_offset = timedelta(0)


def now() -> datetime:
    return timezone.now() + _offset


def advance(seconds: float) -> None:
    """Move this process's connectors clock forward (tests and benchmarks only)."""
    global _offset
    with _lock:
        _offset += timedelta(seconds=seconds)


@contextmanager
def shifted() -> Iterator[None]:
    """Undo every ``advance`` made inside the block when it ends."""
    global _offset
    with _lock:
        saved = _offset
    try:
        yield
    finally:
        with _lock:
            _offset = saved
