"""Waiting for a freshly started server (gunicorn in the benchmarks and the multi-worker tests), and
stopping a child process (servers, Celery workers) without leaving it behind."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def wait_until_up(url: str, *, attempts: int = 150, interval: float = 0.2) -> bool:
    """Poll ``url`` until it answers with a success status; False if it never did."""
    for _ in range(attempts):
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (a loopback URL the caller built)
            return True
        except OSError:
            time.sleep(interval)
    return False


def stop_process(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; nothing if it has already exited."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
