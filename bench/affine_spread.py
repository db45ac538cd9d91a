"""Calls spread over many tenants against calls to one tenant, through HAProxy in front of 1, 2 and 4
gunicorn groups hashed on the tenant (``config/haproxy.py``, as ``make run-affine`` runs it). Uses the
``scale_*`` tenants ``bench/tenants_scale.py`` made (no provisioning here).

    .venv/bin/python -m bench affine-spread [--groups 1 2 4] [--tenants 1000] [--workers 2]
        [--duration 5] [--rounds 3] [--warm-passes 6] [--connections 1 4]

For each group count: the groups (gunicorn, ``--workers`` workers each, gthread as ``make run-affine``
runs them, or ``--worker-class sync``, ``CONN_MAX_AGE=600``,
``DATABASE_CONNECTION_MAX_SCHEMAS=0`` so only the routing bounds what a connection sees) behind
HAProxy; ``--warm-passes`` calls to every tenant (a sync worker takes whichever call comes, so with
two workers a backend has missed a given schema after k passes with probability 2^-k); then
``--rounds`` rounds of wrk blocks, for each of ``--connections`` (1: one call at a time, so the rate
is the inverse of a call's latency through HAProxy; more: concurrent calls, which keep every group's
processes busy), alternating three modes: one tenant (acme); one tenant per group in turn (each call
hops between groups as the spread calls do, never changing tenant within a group); and spread
round-robin over every tenant. Each block is also read as the CPU time the groups' gunicorn workers
and their PostgreSQL backends spent per call, each part apart (``/proc/<pid>/stat``: on a shared,
loaded machine the wall time of sequential calls is mostly waiting for a core, the CPU time much
less so). Then each group's share of the tenants (the ``X-Served-By`` HAProxy adds), the private
memory (``RssAnon``) of every PostgreSQL backend the groups hold and the RSS of every gunicorn worker.

The tokens are minted here (as the OAuth flow would issue them, for HAProxy's URL) and go to wrk in
a private temporary file; they are never printed. Run on demand; never part of the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    bench_parser,
    gunicorn_process,
    load,
    mcp_call_body,
    mcp_headers,
    mcp_round_robin_script,
    setup_django,
    target,
    tenant_targets,
    wrk,
)
from config.haproxy import group_name, haproxy, render, wait_for_states

PORT = int(os.environ.get("AFFINE_BENCH_PORT", "8870"))  # not BENCH_PORT: the other benchmarks may run
HOST = f"127.0.0.1:{PORT}"
STATS = f"127.0.0.1:{PORT + 100}"


# --- processes -------------------------------------------------------------------------------------
def start_groups(stack: ExitStack, count: int, args: argparse.Namespace) -> list[int]:
    """``count`` gunicorn groups behind HAProxy's address: their masters' pids."""
    database = os.environ["DATABASE_URL"]
    masters = []
    for index in range(count):
        env = {
            "PUBLIC_BASE_URL": f"http://{HOST}",
            "DATABASE_CONNECTION_MAX_SCHEMAS": "0",
            # each group's connections named, so the memory read below is of the groups' backends only
            "DATABASE_URL": f"{database}{'&' if '?' in database else '?'}application_name={group_name(index)}",
        }
        server = gunicorn_process(
            PORT + 1 + index, args.workers, worker_class=args.worker_class, threads=args.threads, env=env
        )
        masters.append(stack.enter_context(server).pid)
    return masters


def worker_pids(master: int) -> list[int]:
    path = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in path.read_text().split()]


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def backend_pids() -> list[int]:
    """The PostgreSQL backends of the groups' workers (their connections' application_name)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'group%'"
        )
        return [row[0] for row in cursor.fetchall()]


# --- traffic ---------------------------------------------------------------------------------------
def warm_up(targets: list[tuple[str, str, int]], passes: int) -> dict[str, str]:
    """Sequential calls to every tenant, ``passes`` times (each worker's backend sees its group's
    schemas); the group each tenant was served by in the last pass (HAProxy's ``X-Served-By``)."""
    served: dict[str, str] = {}
    for _ in range(passes):
        for slug, token, contact in targets:
            request = urllib.request.Request(
                f"http://{HOST}/t/{slug}/mcp", data=mcp_call_body(contact).encode(), headers=mcp_headers(token)
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                served[slug] = response.headers["X-Served-By"]
            if b'"isError": false' not in body:
                raise SystemExit(f"{slug}: {body[:200]!r}")
    return served


@dataclass(frozen=True)
class Sample:
    """Per call, in ms: wall time (the inverse of the rate), CPU of the groups' workers and their
    PostgreSQL backends together, and each part."""

    wall: float
    cpu: float
    web: float
    db: float


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (``/proc/<pid>/stat``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / ticks


def block(targets: list[tuple[str, str, int]], duration: int, pids: dict[str, list[int]], connections: int) -> Sample:
    """``connections`` connections (one: one call at a time), round-robin over ``targets`` for
    ``duration`` s: wall ms per call (the inverse of the rate) and the CPU ms per call the groups'
    workers (``pids["web"]``) and their PostgreSQL backends (``pids["db"]``) spent (what the other load
    on a shared machine changes least)."""
    web, db = cpu_seconds(pids["web"]), cpu_seconds(pids["db"])
    script = mcp_round_robin_script(targets)
    rate, calls = wrk(f"http://{HOST}/", script, duration, connections=connections, threads=min(connections, 2))
    web, db = (cpu_seconds(pids["web"]) - web) * 1000 / calls, (cpu_seconds(pids["db"]) - db) * 1000 / calls
    return Sample(1000 / rate, web + db, web, db)


def measure(count: int, args: argparse.Namespace, spread: list, acme: tuple) -> dict[str, Any]:
    with ExitStack() as stack:
        groups = start_groups(stack, count, args)
        ports = [PORT + 1 + i for i in range(count)]
        with haproxy(render(HOST, ports, stats_bind=STATS), wait_for=f"http://{STATS}/"):
            states = wait_for_states(f"http://{STATS}", {group_name(i): "UP" for i in range(count)})
            if set(states.values()) != {"UP"}:
                raise SystemExit(f"groups not up: {states}")
            started = time.perf_counter()
            warm_up([acme], 20)
            served = warm_up(spread, args.warm_passes)
            shares = Counter(served.values())
            # one tenant per group, in turn: each call changes group as the spread calls do, never tenant
            # within a group (what the spread calls pay beyond the hop between processes)
            firsts: dict[str, tuple] = {}
            for entry in spread:
                firsts.setdefault(served[entry[0]], entry)
            per_group = list(firsts.values())
            print(f"  {count} group(s): warm-up {time.perf_counter() - started:.0f} s ({load()})", flush=True)
            pids = {"web": [pid for master in groups for pid in worker_pids(master)], "db": backend_pids()}
            modes = {"one": [acme], "per group": per_group, "spread": spread}
            samples: dict[int, dict[str, list[Sample]]] = {
                c: {mode: [] for mode in modes} for c in args.connections
            }
            for _ in range(args.rounds):
                for connections in args.connections:
                    for mode, targets in modes.items():
                        samples[connections][mode].append(block(targets, args.duration, pids, connections))
            backends = [status_mb(pid, "RssAnon") for pid in backend_pids()]
            workers = [status_mb(pid, "VmRSS") for master in groups for pid in worker_pids(master)]
    figures = {c: _medians(per_mode) for c, per_mode in samples.items()}
    for connections, f in figures.items():
        one, per, spr = f["one"], f["per group"], f["spread"]
        print(
            f"  -c{connections}: wall one {one.wall:.2f} ms, spread {spr.wall:.2f} ms ({spr.wall / one.wall:.2f}x); "
            f"CPU one {one.cpu:.2f} ms, spread {spr.cpu:.2f} ms ({spr.cpu / one.cpu:.2f}x); one tenant per group: "
            f"wall {per.wall:.2f} ms, CPU {per.cpu:.2f} ms; CPU web/db one {one.web:.2f}/{one.db:.2f}, per group "
            f"{per.web:.2f}/{per.db:.2f}, spread {spr.web:.2f}/{spr.db:.2f}; {dict(shares)} ({load()})",
            flush=True,
        )
    return {"figures": figures, "shares": shares, "backends": backends, "workers": workers}


def _medians(per_mode: dict[str, list[Sample]]) -> dict[str, Sample]:
    """mode -> each figure's median over the rounds."""
    return {
        mode: Sample(*(statistics.median(getattr(v, name) for v in values) for name in ("wall", "cpu", "web", "db")))
        for mode, values in per_mode.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per group")
    # sync: one call per worker, the connection closed after it; gthread is what `make run-affine`
    # runs (config/gunicorn.py): threads, each with its own database connection, and kept-alive
    # connections from HAProxy
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker with --worker-class gthread")
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per block")
    parser.add_argument("--rounds", type=int, default=3)
    # a sync worker takes whichever call comes: with 2 workers, after k passes a backend has missed a
    # given schema with probability 2^-k, and such a call is a cold one in the measured blocks
    parser.add_argument("--warm-passes", type=int, default=6, help="calls to every tenant before measuring")
    # 1: one call at a time through HAProxy (a call's latency); more: concurrent calls, as many
    # clients send them, which keep every group's processes busy
    parser.add_argument("--connections", type=int, nargs="+", default=[1], help="wrk connections, each a block")
    args = parser.parse_args(argv)
    setup_django(migrate=False)
    spread, acme = tenant_targets(args.tenants, host=HOST), target("acme", HOST)
    print(f"{len(spread)} tenants, tokens minted ({load()})", flush=True)
    results = {}
    for count in args.groups:
        results[count] = measure(count, args, spread, acme)
        from django.db import connection

        connection.close()
    report(results, args, len(spread))


def report(results: dict[int, dict[str, Any]], args: argparse.Namespace, tenants: int) -> None:
    lines = [
        f"\n## tools/call (crm_get_contact) through HAProxy, {tenants} tenants, gunicorn groups of "
        f"{args.workers} {args.worker_class} workers"
        + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
        + f", wrk -d{args.duration}s x {args.rounds} rounds ({load()})\n",
        "| groups | tenants per group | PostgreSQL backends, RssAnon MB median (max) "
        "| gunicorn workers, RSS MB median (max) |",
        "|---:|---|---:|---:|",
    ]
    for count, r in results.items():
        shares = " / ".join(str(r["shares"][group_name(i)]) for i in range(count))
        backends = f"{statistics.median(r['backends']):.0f} ({max(r['backends']):.0f})" if r["backends"] else "-"
        workers = f"{statistics.median(r['workers']):.0f} ({max(r['workers']):.0f})" if r["workers"] else "-"
        lines.append(f"| {count} | {shares} | {backends} | {workers} |")
    lines += [
        "\nwall ms per call is the inverse of the rate (with one connection, a call's latency); CPU ms per "
        "call is the groups' workers and PostgreSQL backends.\n",
        "| connections | groups | one tenant (acme): wall, CPU ms | one tenant per group, in turn: wall, CPU ms "
        "| spread: wall, CPU ms | spread / one: wall, CPU (web, db) | spread / one per group: wall, CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for connections in args.connections:
        for count, r in results.items():
            one, per, spr = (r["figures"][connections][mode] for mode in ("one", "per group", "spread"))
            lines.append(
                f"| {connections} | {count} | {one.wall:.2f}, {one.cpu:.2f} | {per.wall:.2f}, {per.cpu:.2f} "
                f"| {spr.wall:.2f}, {spr.cpu:.2f} | {spr.wall / one.wall:.2f}x, {spr.cpu / one.cpu:.2f}x "
                f"({spr.web / one.web:.2f}x, {spr.db / one.db:.2f}x) "
                f"| {spr.wall / per.wall:.2f}x, {spr.cpu / per.cpu:.2f}x |"
            )
    print("\n".join(lines))
