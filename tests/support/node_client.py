"""An MCP client script under tests/node (``client.mjs``) driven over its stdio: it prints one JSON
event a line, and reads the answers to some of them back on stdin."""

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
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    events: list[dict] = []
    try:
        for line in process.stdout:
            event = json.loads(line)
            events.append(event)
            reply = answer(event)
            if reply is not None:
                process.stdin.write(json.dumps(reply) + "\n")
                process.stdin.flush()
        returncode = process.wait(timeout=30)
    finally:
        watchdog.cancel()
        process.kill()
    stderr = process.stderr.read()
    assert returncode == 0 and not [e for e in events if e["event"] == "error"], (events[-3:], stderr[-2000:])
    return events
