"""make bench: every benchmark of docs/benchmarks.md in one run, one after the other.

    make bench                                  # this checkout
    make bench BEFORE=/path/to/older/checkout   # also the older code, side by side where a script can

The 1,000-tenant latency set-up takes tens of minutes and is its own target (``make bench-tenants``,
then ``bench/tenants_spread.py`` over the tenants it made); here the tenant benchmark provisions a few
dozen tenants (provisioning time and the latency ratio at that size), and ``provisioning.py`` times
``create_tenant`` with and without spare schemas on the bench database. ``bench/pooler_check.py`` runs
when pgbouncer is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def steps(before: str) -> list[tuple[str, list[str]]]:
    with_before = (lambda flag: [flag, before]) if before else (lambda flag: [])
    runs = [
        ("routing.py", []),
        ("mcp_throughput.py", ["--duration", "5", "--rounds", "3", *with_before("--before-tree")]),
        ("oauth_tokens.py", ["--rounds", "200", *with_before("--before")]),
        ("audit_overhead.py", []),
        ("connectors_tokens.py", []),
        ("refresh_jobs.py", with_before("--before")),
        ("tenants_scale.py", ["--tenants", "50", "--wrk", "0"]),
        ("provisioning.py", ["--rounds", "3", "--purge", *with_before("--before")]),
    ]
    if shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists():
        runs.append(("pooler_check.py", []))
    return runs


def main() -> int:
    before = os.environ.get("BEFORE", "")
    failed = []
    for script, args in steps(before):
        print(f"\n=== {script} {' '.join(args)}".rstrip(), flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / script), *args])
        print(f"=== {script}: exit {code}, {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
