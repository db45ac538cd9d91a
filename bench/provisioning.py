"""``create_tenant`` side by side (issue 14, part 4): this checkout's spare pool (full and empty) and
its direct copy against another checkout (``--before``, e.g. main's worktree), on one or more
databases (e.g. one with a few tenants and one with 1,000), rounds interleaved so drift hits every
way alike.

    .venv/bin/python bench/provisioning.py --before ../main --db postgres://…/small --db postgres://…/big

Each sample is one ``create_tenant`` call (tenant row, schema, receivers; no demo data) in a fresh
process, so the first call of a process (which reads the template's catalog) and the following ones
are reported apart. The tenants made are dropped again after each process; the spares it used are
copied again before the next "pool" process (not timed). The replenishment queued on commit goes to
the configured broker like in production; ``--purge`` empties that queue at the end.

Run on demand; never part of the tests.
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

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "bench_prov_"


def worker(count: int, mode: str) -> None:
    """In the checkout of the current directory: ``count`` tenants through create_tenant, timed, then dropped."""
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config.dev_secrets import ensure_dev_env

    for key, value in ensure_dev_env().items():
        os.environ.setdefault(key, value)
    import django

    django.setup()
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
    times = []
    slugs = [f"{PREFIX}{os.getpid()}_{i}" for i in range(count)]
    for slug in slugs:
        started = time.perf_counter()
        create_tenant(slug=slug, name=slug)
        times.append(time.perf_counter() - started)
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(schema_name__in=slugs):
        tenant.delete(force_drop=True)
    if mode != "before":
        drop_spares()
    print(json.dumps({"times": times, "code": str(Path(tenants.__file__).parent.parent)}))


def run(checkout: Path, db: str, mode: str, count: int) -> list[float]:
    env = {**os.environ, "DATABASE_URL": db, "TENANT_SPARE_SCHEMAS": "0"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "provisioning.py"), "--worker", str(count), "--mode", mode],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if Path(result["code"]).resolve() != checkout.resolve():
        raise SystemExit(f"{mode}: ran the code of {result['code']}, not {checkout}")
    return result["times"]


def tenant_count(db: str) -> int:
    out = subprocess.run(
        ["psql", db, "-Atc", "SELECT count(*) FROM tenants_tenant"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="pool", help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, help="another checkout (e.g. main's worktree) for the 'before' rows")
    parser.add_argument("--db", action="append", required=False, help="database URL (repeat for several)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-process", type=int, default=3, help="create_tenant calls per process")
    parser.add_argument("--purge", action="store_true", help="empty the Celery queue at the end")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.mode)
        return
    dbs = args.db or [os.environ["DATABASE_URL"]]
    ways = [("before", args.before)] if args.before else []
    ways += [("copy, no pool", ROOT), ("empty pool", ROOT), ("pool", ROOT)]
    samples: dict[tuple[str, str], dict[str, list[float]]] = {
        (db, way): {"first": [], "next": []} for db in dbs for way, _ in ways
    }
    counts = {db: tenant_count(db) for db in dbs}
    print(f"load {os.getloadavg()}", flush=True)
    for round_ in range(args.rounds):
        for db in dbs:
            for way, checkout in ways:
                times = run(checkout, db, way, args.per_process)
                samples[(db, way)]["first"].append(times[0])
                samples[(db, way)]["next"] += times[1:]
                print(f"round {round_} {counts[db]} tenants {way}: {', '.join(f'{t * 1000:.0f}' for t in times)} ms")
    print(f"\nload {os.getloadavg()}\n")
    print("| tenants | way | median ms (all calls) | first call of a process | later calls |")
    print("|---:|---|---:|---:|---:|")
    for (db, way), got in samples.items():
        every = got["first"] + got["next"]
        print(
            f"| {counts[db]:,} | {way} | {statistics.median(every) * 1000:.0f} | "
            f"{statistics.median(got['first']) * 1000:.0f} | {statistics.median(got['next']) * 1000:.0f} |"
        )
    if args.purge:
        subprocess.run([sys.executable, "-m", "celery", "-A", "config", "purge", "-f"], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
