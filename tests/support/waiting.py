from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from subprocess import Popen


def wait_for(
    condition: Callable[[], object],
    what: str = "the condition",
    procs: Iterable[tuple[Popen, Path]] = (),
    timeout: float = 60,
) -> None:
    """Poll ``condition`` until it holds. ``procs``: (process, log file) pairs that must stay alive
    meanwhile; their logs' tails are in the error when one dies or the time runs out."""
    procs = list(procs)
    deadline = time.monotonic() + timeout
    while True:
        for process, log_path in procs:
            assert process.poll() is None, log_path.read_text()[-3000:]
        if condition():
            return
        if time.monotonic() > deadline:
            logs = "\n".join(path.read_text()[-2000:] for _, path in procs)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.05)
