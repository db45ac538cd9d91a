"""Calls spread over many tenants against calls to one tenant, before and after, in one run (issue 14,
target 3). Uses the ``scale_*`` tenants ``bench/tenants_scale.py`` made (no provisioning here).

    .venv/bin/python bench/tenants_spread.py --before ../spread-base [--tenants 1000] [--calls 200]
        [--blocks 6] [--max-schemas 250] [--wrk 5] [--rounds 2]

One long-lived worker process per variant (``--before``: another checkout's code, served from its own
directory with this virtualenv; this checkout; this checkout with ``DATABASE_CONNECTION_MAX_SCHEMAS``),
each with its own PostgreSQL connection, driven over a pipe. Blocks alternate between variants and
modes, so load drift hits them alike:

1. cold: one call to each tenant, round-robin, each the backend's first in that schema;
2. warm: ``--blocks`` blocks of ``--calls`` calls, one tenant (acme) and spread round-robin;
3. memory: a new backend (``pg_backend_memory_contexts``) after 50 calls to acme, then after one call
   to each tenant;
4. ``--wrk``: req/s against gunicorn (2 sync workers, ``CONN_MAX_AGE=600``) per variant, rounds
   alternated.

The tokens are minted here (as the OAuth flow would issue them) and handed to the workers over their
pipe; they are never printed. Run on demand; never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (  # noqa: E402 (no Django at import)
    MODERN,
    ensure_wrk,
    mcp_call_body,
    mcp_round_robin_script,
    mint_token,
    run_wrk,
)

PORT = int(os.environ.get("BENCH_PORT", "8765"))
HOST = f"127.0.0.1:{PORT}"
TOOL = "crm_get_contact"


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def django_setup(root: Path) -> None:
    """Django of the checkout at ``root``, without migrations or demo data (the database is ready)."""
    sys.path.insert(0, str(root))
    os.chdir(root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config.dev_secrets import ensure_dev_env

    for key, value in ensure_dev_env().items():
        os.environ.setdefault(key, value)
    import django

    django.setup()


# --- worker: one variant, one connection --------------------------------------------------------------
def worker(root: Path) -> None:
    django_setup(root)
    from django.db import connection
    from django.test import Client

    out = sys.stdout
    sys.stdout = sys.stderr  # anything else printed goes to stderr, the pipe carries answers only
    client = Client(HTTP_HOST=HOST)
    targets: dict[str, list[tuple[str, dict[str, str], str]]] = {}
    position: dict[str, int] = {}

    def run(mode: str, calls: int) -> list[float]:
        prepared = targets[mode]
        samples = []
        start = position.get(mode, 0)
        position[mode] = start + calls
        for i in range(start, start + calls):
            path, headers, body = prepared[i % len(prepared)]
            began = time.perf_counter()
            response = client.post(path, data=body, content_type="application/json", **headers)
            samples.append(time.perf_counter() - began)
            if response.status_code != 200 or b'"isError": false' not in response.content:
                raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
        return samples

    def memory() -> list[float]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sum(total_bytes), sum(total_bytes) FILTER (WHERE 'CacheMemoryContext' IN (name, parent)),"
                " (SELECT count(*) FROM pg_prepared_statements) FROM pg_backend_memory_contexts"
            )
            total, cache, prepared = cursor.fetchone()
        return [float(total) / 2**20, float(cache or 0) / 2**20, int(prepared)]

    for line in sys.stdin:
        message = json.loads(line)
        command = message["cmd"]
        answer: Any = None
        if command == "targets":
            for mode, entries in message["targets"].items():
                targets[mode] = [
                    (
                        f"/t/{slug}/mcp",
                        {
                            "HTTP_AUTHORIZATION": f"Bearer {token}",
                            "HTTP_MCP_PROTOCOL_VERSION": MODERN,
                            "HTTP_MCP_METHOD": "tools/call",
                            "HTTP_MCP_NAME": TOOL,
                        },
                        mcp_call_body(contact),
                    )
                    for slug, token, contact in entries
                ]
        elif command == "run":
            answer = run(message["mode"], message["calls"])
        elif command == "memory":
            answer = memory()
        elif command == "reset":
            connection.close()
            position.clear()
        out.write(json.dumps({"answer": answer}) + "\n")
        out.flush()


class Worker:
    def __init__(self, name: str, root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )

    def ask(self, **message: Any) -> Any:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} died")
        return json.loads(line)["answer"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


# --- driver --------------------------------------------------------------------------------------------
def mint_tokens(count: int) -> tuple[list[list[Any]], list[Any]]:
    """An MCP access token (crm.read, audience this host's tenant MCP URL) and a contact id for each of
    the first ``count`` scale_* tenants and for acme."""
    from tenants.models import Tenant

    slugs = list(
        Tenant.objects.filter(schema_name__startswith="scale_")
        .order_by("schema_name")
        .values_list("schema_name", flat=True)[:count]
    )
    found = [[slug, *mint_token(slug, HOST)] for slug in [*slugs, "acme"]]
    return found[:-1], found[-1]


def wrk_rate(targets: list[list[Any]], duration: int) -> float:
    return run_wrk(ensure_wrk(), f"http://{HOST}/", mcp_round_robin_script(targets), duration, 8)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--before", help="another checkout (e.g. main's worktree) for the 'before' variant")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200, help="calls per block")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--max-schemas", type=int, default=250, help="the recycling variant's limit (0: none)")
    parser.add_argument("--wrk", type=int, default=0, help="wrk seconds per round (0: no wrk)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker))
        return

    django_setup(ROOT)
    spread, acme = mint_tokens(args.tenants)
    print(f"{len(spread)} tenants, tokens minted ({load()})", flush=True)
    variants = {}
    if args.before:
        variants["before"] = (Path(args.before).resolve(), {})
    variants["after"] = (ROOT, {"DATABASE_CONNECTION_MAX_SCHEMAS": "0"})
    if args.max_schemas:
        variants[f"after, recycled every {args.max_schemas} schemas"] = (
            ROOT,
            {"DATABASE_CONNECTION_MAX_SCHEMAS": str(args.max_schemas)},
        )
    workers = {name: Worker(name, root, env) for name, (root, env) in variants.items()}
    try:
        for w in workers.values():
            w.ask(cmd="targets", targets={"one": [acme], "spread": spread})
            w.ask(cmd="run", mode="one", calls=20)  # warm-up on acme
        # 1. cold: each call the backend's first in that schema (alternating chunks of 100)
        cold: dict[str, list[float]] = {name: [] for name in workers}
        for _ in range(0, len(spread), 100):
            for name, w in workers.items():
                cold[name] += w.ask(cmd="run", mode="spread", calls=min(100, len(spread)))
        print(f"cold pass done ({load()})", flush=True)
        # 2. warm blocks
        warm: dict[tuple[str, str], list[float]] = {(n, m): [] for n in workers for m in ("one", "spread")}
        for _ in range(args.blocks):
            for name, w in workers.items():
                for mode in ("one", "spread"):
                    warm[(name, mode)] += w.ask(cmd="run", mode=mode, calls=args.calls)
        print(f"warm blocks done ({load()})", flush=True)
        print("\n".join(latency_report(workers, warm, cold, len(spread))), flush=True)
        # 3. memory of a new backend
        mem: dict[str, tuple[list[float], list[float]]] = {}
        for name, w in workers.items():
            w.ask(cmd="reset")
            w.ask(cmd="run", mode="one", calls=50)
            first = w.ask(cmd="memory")
            w.ask(cmd="run", mode="spread", calls=len(spread))
            mem[name] = (first, w.ask(cmd="memory"))
    finally:
        for w in workers.values():
            w.close()
    report: list[str] = []
    report += [
        "\n## PostgreSQL backend of the worker: new connection, 50 calls to acme, then one call to each tenant\n",
        "| variant | MB after acme (cache) | MB after every tenant (cache) | prepared statements |",
        "|---|---:|---:|---:|",
    ]
    for name, (first, last) in mem.items():
        sizes = f"{first[0]:.1f} ({first[1]:.1f}) | {last[0]:.1f} ({last[1]:.1f})"
        report.append(f"| {name} | {sizes} | {first[2]:.0f} -> {last[2]:.0f} |")
    if args.wrk:
        report += wrk_report(variants, spread, acme, args)
    print("\n".join(report))


def latency_report(workers: dict, warm: dict, cold: dict, tenants: int) -> list[str]:
    lines = [
        f"\n## tools/call ({TOOL}), in-process median ms, {tenants} tenants ({load()})\n",
        "| variant | one tenant (acme), warm | spread, warm | spread / one | spread, cold (first call per schema) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in workers:
        one, spr = statistics.median(warm[(name, "one")]), statistics.median(warm[(name, "spread")])
        lines.append(f"| {name} | {one * 1000:.2f} | {spr * 1000:.2f} | {spr / one:.2f}x | {median_ms(cold[name])} |")
    return lines


def wrk_report(variants: dict, spread: list, acme: list, args: argparse.Namespace) -> list[str]:
    from bench.common import gunicorn

    rates: dict[tuple[str, str], list[float]] = {(n, m): [] for n in variants for m in ("one", "spread")}
    for _ in range(args.rounds):
        for name, (root, env) in variants.items():
            with gunicorn(PORT, root=root, env=env):
                for mode, targets in (("one", [acme]), ("spread", spread)):
                    wrk_rate(targets, 2)  # warm-up: every worker's connection has seen every schema
                    rates[(name, mode)].append(wrk_rate(targets, args.wrk))
    lines = [
        f"\n## wrk -t2 -c8 -d{args.wrk}s x {args.rounds} rounds, gunicorn 2 sync workers, median req/s ({load()})\n",
        "| variant | one tenant | spread | spread / one |",
        "|---|---:|---:|---:|",
    ]
    for name in variants:
        one, spr = statistics.median(rates[(name, "one")]), statistics.median(rates[(name, "spread")])
        lines.append(f"| {name} | {one:.0f} | {spr:.0f} | {spr / one:.2f}x |")
    return lines


if __name__ == "__main__":
    main()
