"""The npm ``oidc-provider`` servers of tests/node_oidc (``server.mjs`` the connectors' provider,
``idp.mjs`` the enterprise identity provider), started on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node_oidc"


def start(script: str, clients: list[dict], *, who: str) -> tuple[str, subprocess.Popen]:
    """Run ``script`` with these clients; its issuer and process (the caller stops the process).
    ``who`` names the tests needing it and the server in the failure messages."""
    node = shutil.which("node")
    assert node, f"the {who} tests need Node.js (tests/node_oidc)"
    assert (NODE_DIR / "node_modules" / "oidc-provider").exists(), "run `npm ci` in tests/node_oidc"
    process = subprocess.Popen(
        [node, script],
        cwd=NODE_DIR,
        env={**os.environ, "CLIENTS": json.dumps(clients)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()
    assert line, f"the oidc-provider {script} did not start"
    return json.loads(line)["issuer"], process
