"""Real Celery worker and beat processes over the test database and the configured broker (Redis on
loopback when ``REDIS_URL`` is set), for the lifecycle-job tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from probe.ready import stop_process
from tests.database import database_url

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def celery_process(kind: str, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, Path]]:
    """``celery -A config <kind> ...``; yields the process and the file its output goes to."""
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "INFO",
        "CONNECTORS_REFRESH_JITTER_SECONDS": "0",
        **(env or {}),
    }
    with tempfile.NamedTemporaryFile("w+b", suffix=f".{kind}.log", delete=False) as out:
        log_path = Path(out.name)
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", kind, *args],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, log_path
    finally:
        stop_process(process)


@contextmanager
def workers(count: int, env: dict[str, str] | None = None) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    with ExitStack() as stack:
        started = []
        for _ in range(count):
            name = f"jobs-{uuid.uuid4().hex[:6]}@127.0.0.1"
            args = ("worker", "--pool", "solo", "-n", name, "-l", "info", "--without-gossip", "--without-mingle")
            started.append(stack.enter_context(celery_process(*args, env=env)))
        yield started


@contextmanager
def beat(env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        args = ("beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1", "-l", "info")
        with celery_process(*args, "--pidfile", str(Path(tmp) / "beat.pid"), env=env) as started:
            yield started


def idle(count: int) -> bool:
    """Nothing left to run: the broker's queue is empty, each of the ``count`` workers answers that it
    runs, holds and schedules no task, and the queue is still empty after that (a task that ran in
    between and queued another would show there). A solo worker busy with a task does not answer."""
    from config.celery import app

    def queued() -> int:
        with app.connection_for_read() as conn:
            try:
                channel = conn.default_channel
                return channel.queue_declare(queue=app.conf.task_default_queue, passive=True).message_count
            except conn.channel_errors:  # Redis keeps no empty queue: nothing to declare is nothing queued
                return 0

    if queued():
        return False
    inspect = app.control.inspect(timeout=1)
    answers = [inspect.active() or {}, inspect.reserved() or {}, inspect.scheduled() or {}]
    if any(len(found) < count or any(found.values()) for found in answers):
        return False
    return queued() == 0
