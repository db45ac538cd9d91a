"""Metrics are right across gunicorn workers: gunicorn with two worker processes
and ``config/gunicorn.py`` over the test database in multiprocess mode; challenges answered by either
worker are summed at /metrics, and stay counted after a worker dies and is replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.database import database_url
from tests.mcp_raw import call
from tests.observability_helpers import samples, value
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent
INVALID = {"tenant": "acme", "class": "INVALID_TOKEN", "channel": "http"}


def _wait(url: str) -> None:
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@pytest.fixture
def workers(live_server_url, tmp_path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_TOKEN": settings.METRICS_TOKEN,
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--config", "python:config.gunicorn", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/t/acme/healthz")
        yield f"http://127.0.0.1:{port}", directory
    finally:
        server.terminate()
        server.wait(timeout=20)


def _count(base: str) -> float:
    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return value(samples(response.text), "platform_auth_challenges_total", **INVALID)


@pytest.mark.timeout(120)
def test_challenges_are_summed_across_workers_and_survive_a_worker(workers):
    base, directory = workers
    assert _count(base) == 0
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: call(f"{base}/t/acme/mcp", "not-a-token", "crm_search_contacts"), range(40)))
    assert {a.status_code for a in answers} == {401}
    pids = {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("counter_*.db")}
    assert len(pids) >= 2, f"one worker served every request: {pids}"
    assert _count(base) == 40

    victim = next(iter(pids))
    os.kill(victim, signal.SIGTERM)  # gunicorn replaces it (child_exit runs mark_process_dead)
    for _ in range(100):
        try:
            os.kill(victim, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    _wait(f"{base}/t/acme/healthz")
    assert _count(base) == 40  # the dead worker's samples still count
