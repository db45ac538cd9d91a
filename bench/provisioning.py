"""``create_tenant`` side by side: this checkout's spare pool (full and empty) and its direct copy
against another checkout (``--before``), on one or more databases (``--db``, e.g. one with a few tenants
and one with 1,000), rounds interleaved. Each sample is one ``create_tenant`` call (tenant row, schema,
receivers; no demo data) in a fresh process, so the first call of a process (which reads the template's
catalog) and the later ones are reported apart; the tenants are dropped again, and the spares refilled
untimed before each "pool" process. The replenishment queued on commit goes to the configured broker;
``--purge`` empties that queue at the end."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, bench_parser, child, code_root, load, seconds, setup_django, table

PREFIX = "bench_prov_"


def worker(count: int, mode: str) -> None:
    """``count`` tenants through create_tenant in this process, timed, then dropped."""
    setup_django(migrate=False)
    from django.conf import settings
    from django.db import connection

    import tenants
    from tenants.models import Tenant
    from tenants.services import create_tenant

    if mode != "before":
        from pgtenancy.spares import drop_spares, replenish

        settings.TENANT_SPARE_SCHEMAS = count if mode == "pool" else (1 if mode == "empty pool" else 0)
        drop_spares()
        if mode == "pool":
            replenish()
    times, slugs = [], [f"{PREFIX}{os.getpid()}_{i}" for i in range(count)]
    for slug in slugs:
        times.append(seconds(create_tenant, slug=slug, name=slug))
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(schema_name__in=slugs):
        tenant.delete(force_drop=True)
    if mode != "before":
        drop_spares()
    code = Path(tenants.__file__).resolve().parent.parent
    if code != code_root():
        raise SystemExit(f"{mode}: ran the code of {code}, not {code_root()}")
    print(json.dumps(times))


def tenant_count(db: str) -> int:
    out = subprocess.run(
        ["psql", db, "-Atc", "SELECT count(*) FROM tenants_tenant"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="pool", help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, help="another checkout (e.g. main's worktree) for the 'before' rows")
    parser.add_argument("--db", action="append", help="database URL (repeat for several; default DATABASE_URL)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-process", type=int, default=3, help="create_tenant calls per process")
    parser.add_argument("--purge", action="store_true", help="empty the Celery queue at the end")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.mode)
    if not (args.db or os.environ.get("DATABASE_URL")):
        setup_django()  # the embedded PostgreSQL, migrated
    dbs = args.db or [os.environ["DATABASE_URL"]]
    ways = ([("before", args.before)] if args.before else []) + [
        (w, ROOT) for w in ("copy, no pool", "empty pool", "pool")
    ]
    samples = {(db, way): {"first": [], "next": []} for db in dbs for way, _ in ways}
    counts = {db: tenant_count(db) for db in dbs}
    print(load(), flush=True)
    for round_ in range(args.rounds):
        for db in dbs:
            for way, checkout in ways:
                env = {"DATABASE_URL": db, "TENANT_SPARE_SCHEMAS": "0"}
                times = child("provisioning", "--worker", str(args.per_process), "--mode", way, code=checkout, env=env)
                samples[(db, way)]["first"].append(times[0])
                samples[(db, way)]["next"] += times[1:]
                print(f"round {round_} {counts[db]} tenants {way}: {', '.join(f'{t * 1000:.0f}' for t in times)} ms")
    print(f"\n{load()}\n")
    rows = []
    for (db, way), got in samples.items():
        every = got["first"] + got["next"]
        ms = [f"{statistics.median(values) * 1000:.0f}" for values in (every, got["first"], got["next"])]
        rows.append([f"{counts[db]:,}", way, *ms])
    print(table(["tenants", "way", "median ms (all calls)", "first call of a process", "later calls"], rows, "rlrrr"))
    if args.purge:
        subprocess.run([sys.executable, "-m", "celery", "-A", "config", "purge", "-f"], cwd=ROOT, check=False)
    return None
