"""A Node script under tests/node driven over its stdio: an MCP client (``client.mjs``) prints one
JSON event a line and reads the answers to some of them back on stdin."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path


def run_client(harness: Path, package: str, args: list[str], answer: Callable[[dict], dict | None]) -> list[dict]:
    """Run ``harness/client.mjs`` with ``args`` (killed after two minutes); ``answer`` sees each event
    and what it returns is written back on stdin. The events, once the script exited 0 without an
    ``error`` event."""
    node = shutil.which("node")
    assert node, "node is required for this test"
    assert (harness / "node_modules" / package).is_dir(), "run `make test` (npm ci)"
    process = subprocess.Popen(
        [node, "client.mjs", *args],
        cwd=harness,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[dict] = []

    def on_line(line: str) -> None:
        event = json.loads(line)
        events.append(event)
        reply = answer(event)
        if reply is not None:
            process.stdin.write(json.dumps(reply) + "\n")
            process.stdin.flush()

    returncode = drive(process, on_line, kill_after=120, wait=30)
    stderr = process.stderr.read()
    assert returncode == 0 and not [e for e in events if e["event"] == "error"], (events[-3:], stderr[-2000:])
    return events


def drive(process: subprocess.Popen, on_line: Callable[[str], None], *, kill_after: float, wait: float) -> int:
    """Hand each line the process prints to ``on_line`` until it exits (waited for ``wait`` seconds
    after its output closed); killed after ``kill_after`` seconds in all. Its exit code."""
    watchdog = threading.Timer(kill_after, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            on_line(line)
        return process.wait(timeout=wait)
    finally:
        watchdog.cancel()
        process.kill()
