"""One runner for every benchmark of docs/benchmarks.md: ``python -m bench <name> [options]``
(``python -m bench <name> --help`` for a benchmark's options), and ``python -m bench all`` for
``make bench``: the set below, one after the other (``BEFORE=<checkout>``: the older code side by
side where a benchmark can). The 1,000-tenant set-up takes tens of minutes and is its own target
(``make bench-tenants``, then ``tenants-spread`` over the tenants it made); ``all`` provisions a few
dozen tenants. ``pooler-check`` runs when pgbouncer is installed."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = {
    "routing": "django-tenants' subfolder routing against tenants.middleware, per request",
    "mcp-throughput": "MCP tools/call against DRF + django-oauth-toolkit, wrk and in process",
    "oauth-tokens": "code exchange and refresh at the token endpoint, and their statements",
    "audit-overhead": "tools/call with auditing and metrics off, on, and auditing every call",
    "connectors-tokens": "connector token access, cached and refreshing (npm oidc-provider)",
    "refresh-jobs": "the proactive refresh job: accounts per second, refreshes per hour",
    "refresh-lifetime": "one account with short tokens under the real beat and worker",
    "provider-change": "changing a provider's grant target with N connected accounts",
    "tenants-scale": "provisioning and tools/call latency with many tenants (make bench-tenants)",
    "tenants-spread": "calls spread over many tenants against calls to one, before and after",
    "provisioning": "create_tenant from a spare schema, by copy, against another checkout",
    "pooler-check": "schema per tenant behind PgBouncer (needs pgbouncer)",
}


def run_all(before: str) -> int:
    with_before = (lambda flag: [flag, before]) if before else (lambda flag: [])
    steps = [
        ("routing", []),
        ("mcp-throughput", ["--duration", "5", "--rounds", "3", *with_before("--before-tree")]),
        ("oauth-tokens", ["--rounds", "200", *with_before("--before")]),
        ("audit-overhead", []),
        ("connectors-tokens", []),
        ("refresh-jobs", with_before("--before")),
        ("tenants-scale", ["--tenants", "50", "--wrk", "0"]),
        ("provisioning", ["--rounds", "3", "--purge", *with_before("--before")]),
    ]
    if shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists():
        steps.append(("pooler-check", []))
    failed = []
    for name, args in steps:
        print(f"\n=== {name} {' '.join(args)}".rstrip(), flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", "bench", name, *args], cwd=Path(__file__).parent.parent)
        print(f"=== {name}: exit {code}, {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or (argv[0] not in BENCHMARKS and argv[0] != "all"):
        print(__doc__ + "\n")
        for name, what in BENCHMARKS.items():
            print(f"  {name:18} {what}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    if argv[0] == "all":
        return run_all(os.environ.get("BEFORE", ""))
    module = importlib.import_module(f"bench.{argv[0].replace('-', '_')}")
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
