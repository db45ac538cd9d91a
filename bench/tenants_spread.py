"""Calls spread over many tenants against calls to one tenant, before and after, in one run, over the
``scale_*`` tenants ``bench tenants-scale`` made. One long-lived worker process per variant (``--before``:
another checkout's code; this checkout; this checkout with ``DATABASE_CONNECTION_MAX_SCHEMAS``), each
with its own PostgreSQL connection, driven over a pipe; blocks alternate between variants and modes:
1. cold: one call to each tenant, each the backend's first in that schema; 2. warm: ``--blocks`` blocks
of ``--calls`` calls, one tenant (acme) and spread; 3. memory of a new backend after 50 calls to acme,
then after one call to each tenant; 4. ``--wrk``: req/s against gunicorn per variant. The tokens are
minted here and handed to the workers over their pipe; they are never printed."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    RoundRobin,
    backend_memory,
    bench_parser,
    load,
    median_ms,
    setup_django,
    table,
    target,
    tenant_targets,
    wrk_modes,
)


def worker() -> None:
    """One variant, one connection: answers the driver's commands, one JSON line each."""
    setup_django(migrate=False)
    from django.db import connection

    out, sys.stdout = sys.stdout, sys.stderr  # anything else printed goes to stderr: the pipe carries answers
    modes: dict[str, RoundRobin] = {}
    for line in sys.stdin:
        message, answer = json.loads(line), None
        if message["cmd"] == "targets":
            modes = {mode: RoundRobin(entries) for mode, entries in message["targets"].items()}
        elif message["cmd"] == "run":
            answer = modes[message["mode"]].run(message["calls"])
        elif message["cmd"] == "memory":
            answer = backend_memory()
        elif message["cmd"] == "reset":
            connection.close()
            for mode in modes.values():
                mode.position = 0
        out.write(json.dumps({"answer": answer}) + "\n")
        out.flush()


class Worker:
    def __init__(self, name: str, root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench", "tenants-spread", "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "BENCH_CODE_ROOT": str(root), **env},
        )

    def ask(self, **message: Any) -> Any:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} died")
        return json.loads(line)["answer"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--before", help="another checkout (e.g. main's worktree) for the 'before' variant")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200, help="calls per block")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--max-schemas", type=int, default=250, help="the recycling variant's limit (0: none)")
    parser.add_argument("--wrk", type=int, default=0, help="wrk seconds per round (0: no wrk)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.worker:
        return worker()
    setup_django(migrate=False)
    spread, acme = tenant_targets(args.tenants), [target("acme")]
    print(f"{len(spread)} tenants, tokens minted ({load()})", flush=True)
    variants = {"before": (Path(args.before).resolve(), {})} if args.before else {}
    variants["after"] = (ROOT, {"DATABASE_CONNECTION_MAX_SCHEMAS": "0"})
    if args.max_schemas:
        recycled = {"DATABASE_CONNECTION_MAX_SCHEMAS": str(args.max_schemas)}
        variants[f"after, recycled every {args.max_schemas} schemas"] = (ROOT, recycled)
    workers = {name: Worker(name, root, env) for name, (root, env) in variants.items()}
    try:
        for w in workers.values():
            w.ask(cmd="targets", targets={"one": acme, "spread": spread})
            w.ask(cmd="run", mode="one", calls=20)  # warm-up on acme
        cold: dict[str, list[float]] = {name: [] for name in workers}
        for _ in range(0, len(spread), 100):  # each call the backend's first in that schema, chunks alternating
            for name, w in workers.items():
                cold[name] += w.ask(cmd="run", mode="spread", calls=min(100, len(spread)))
        print(f"cold pass done ({load()})", flush=True)
        warm: dict[tuple[str, str], list[float]] = {(n, m): [] for n in workers for m in ("one", "spread")}
        for _ in range(args.blocks):
            for (name, mode), samples in warm.items():
                samples += workers[name].ask(cmd="run", mode=mode, calls=args.calls)
        print(f"warm blocks done ({load()})", flush=True)
        rows = []
        for name in workers:
            one, spr = statistics.median(warm[(name, "one")]), statistics.median(warm[(name, "spread")])
            rows.append(
                [name, f"{one * 1000:.2f}", f"{spr * 1000:.2f}", f"{spr / one:.2f}x", f"{median_ms(cold[name]):.2f}"]
            )
        header = [
            "variant",
            "one tenant (acme), warm",
            "spread, warm",
            "spread / one",
            "spread, cold (first call per schema)",
        ]
        print(f"\n## tools/call (crm_get_contact), in-process median ms, {len(spread)} tenants ({load()})\n")
        print(table(header, rows), flush=True)
        memory = {}
        for name, w in workers.items():
            w.ask(cmd="reset")
            w.ask(cmd="run", mode="one", calls=50)
            first = w.ask(cmd="memory")
            w.ask(cmd="run", mode="spread", calls=len(spread))
            memory[name] = (first, w.ask(cmd="memory"))
    finally:
        for w in workers.values():
            w.close()
    print("\n## PostgreSQL backend of the worker: new connection, 50 calls to acme, then one call to each tenant\n")
    header = ["variant", "MB after acme (cache)", "MB after every tenant (cache)", "prepared statements"]
    rows = [
        [name, f"{a[0]:.1f} ({a[1]:.1f})", f"{b[0]:.1f} ({b[1]:.1f})", f"{a[2]:.0f} -> {b[2]:.0f}"]
        for name, (a, b) in memory.items()
    ]
    print(table(header, rows))
    if args.wrk:
        wrk_report(variants, spread, acme, args)
    return None


def wrk_report(variants: dict, spread: list, acme: list, args: argparse.Namespace) -> None:
    rates: dict[tuple[str, str], list[float]] = {(n, m): [] for n in variants for m in ("one", "spread")}
    for _ in range(args.rounds):
        for name, (root, env) in variants.items():
            for mode, found in wrk_modes({"one": acme, "spread": spread}, args.wrk, 1, root=root, env=env).items():
                rates[(name, mode)] += found
    rows = []
    for name in variants:
        one, spr = statistics.median(rates[(name, "one")]), statistics.median(rates[(name, "spread")])
        rows.append([name, f"{one:.0f}", f"{spr:.0f}", f"{spr / one:.2f}x"])
    print(f"\n## wrk -t2 -c8 -d{args.wrk}s x {args.rounds} rounds, gunicorn 2 sync workers, median req/s ({load()})\n")
    print(table(["variant", "one tenant", "spread", "spread / one"], rows))
