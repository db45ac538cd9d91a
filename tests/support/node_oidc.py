"""The npm ``oidc-provider`` servers of tests/node_oidc (``server.mjs`` the connectors' provider,
``idp.mjs`` the enterprise identity provider), started on a free loopback port."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node_oidc"


def start(script: str, clients: list[dict], *, who: str, wait_seconds: float = 60) -> tuple[str, subprocess.Popen]:
    """Run ``script`` with these clients; its issuer and process (the caller stops the process).
    ``who`` names the tests needing it and the server in the failure messages. A server that has not
    said where it listens within ``wait_seconds`` is killed and started once more (seen once in a full
    run: a Node process that never printed its line held the whole session for the suite's timeout);
    its stderr is in the failure message."""
    node = shutil.which("node")
    assert node, f"the {who} tests need Node.js (tests/node_oidc)"
    assert (NODE_DIR / "node_modules" / "oidc-provider").exists(), "run `npm ci` in tests/node_oidc"
    errors = ""
    for _attempt in range(2):
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (open as long as the server runs)
        process = subprocess.Popen(
            [node, script],
            cwd=NODE_DIR,
            env={**os.environ, "CLIENTS": json.dumps(clients)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        ready, _, _ = select.select([process.stdout], [], [], wait_seconds)
        line = process.stdout.readline() if ready else ""
        if line:
            return json.loads(line)["issuer"], process
        process.kill()
        process.wait(timeout=10)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")[-2000:]
    raise AssertionError(f"the oidc-provider {script} for the {who} tests did not start: {errors}")
