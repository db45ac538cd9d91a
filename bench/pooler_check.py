"""Does schema per tenant survive a connection pooler? (needs ``pgbouncer``; DATABASE_URL: the PostgreSQL
itself, or the embedded one.) For each configuration: its own PgBouncer on loopback in front of the
database, a gunicorn (sync workers, persistent connections) whose ``DATABASE_URL`` points at it, and
concurrent ``GET /t/<slug>/api/bench/contacts-noauth/<id>`` to two tenants where contact ``<id>``
exists in both with a name naming its tenant: each answer is its own tenant's row (ok), the other's
(leak) or an error. Then threads in one process take and release session-level advisory locks through
the same PgBouncer (what ``jobs.runner.exclusive`` and ``connectors.tokens.refresh_lock`` do), counting
unlocks that found no lock and locks left held. Configurations: ``direct`` (no pooler), ``transaction``
(pool_mode=transaction, as configured today), ``transaction-set-every-cursor``
(``TENANT_LIMIT_SET_CALLS=False``), ``session`` (``CONN_MAX_AGE=0``: a persistent connection would hold
a server connection for good), ``transaction+statement-path`` (``DATABASE_POOLER_TRANSACTION_MODE=1``:
``SET LOCAL search_path`` sent with every statement)."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

from bench.common import PORT, bench_parser, child, gunicorn, load, setup_django, table
from probe.pgbouncer import EXECUTABLE as PGBOUNCER_EXECUTABLE
from probe.pgbouncer import pgbouncer

TENANTS = ("acme", "globex")
MARKER_ID = 900_001
CONFIGS = {
    # name: (pool_mode or None for direct, extra environment of the platform)
    "direct": (None, {}),
    "transaction": ("transaction", {}),
    "transaction-set-every-cursor": ("transaction", {"TENANT_LIMIT_SET_CALLS": "0"}),
    # session pooling holds a server connection per client connection: Django closes it after each
    # request (CONN_MAX_AGE=0) so 4 workers can share 2 server connections
    "session": ("session", {"CONN_MAX_AGE": "0"}),
    "transaction+statement-path": ("transaction", {"DATABASE_POOLER_TRANSACTION_MODE": "1"}),
}


def marker_name(slug: str) -> str:
    return f"poolcheck marker of {slug}"


def ensure_markers() -> None:
    from django_tenants.utils import schema_context

    from crm.models import Contact

    for slug in TENANTS:
        with schema_context(slug):
            Contact.objects.update_or_create(id=MARKER_ID, defaults={"name": marker_name(slug)})


@contextmanager
def pooled(upstream: str, pool_mode: str, port: int, pool_size: int) -> Iterator[str]:
    """A PgBouncer on 127.0.0.1:``port`` with one database ``poolcheck`` -> ``upstream``'s database."""
    if PGBOUNCER_EXECUTABLE is None:
        raise SystemExit("pgbouncer is not installed (apt-get install -y pgbouncer)")
    url = urlsplit(upstream)
    user = url.username or "postgres"
    # the embedded PostgreSQL's URL names its socket directory as ?host=...
    host = url.hostname or parse_qs(url.query).get("host", ["127.0.0.1"])[0]
    with pgbouncer(
        host=host,
        port=url.port or 5432,
        dbname=url.path.lstrip("/"),
        user=user,
        alias="poolcheck",
        pool_mode=pool_mode,
        pool_size=pool_size,
        listen_port=port,
        max_client_conn=500,
    ):
        yield f"postgres://{user}@127.0.0.1:{port}/poolcheck"


def http_check(base: str, requests: int, clients: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    rng = random.Random(14)
    plan = [rng.choice(TENANTS) for _ in range(requests)]

    def one(slug: str) -> None:
        try:
            with urllib.request.urlopen(f"{base}/t/{slug}/api/bench/contacts-noauth/{MARKER_ID}", timeout=30) as r:
                name = json.loads(r.read()).get("name")
        except urllib.error.HTTPError as exc:
            outcome = f"error {exc.code}"
        except Exception as exc:
            outcome = f"error {type(exc).__name__}"
        else:
            if name == marker_name(slug):
                outcome = "ok"
            elif name in {marker_name(t) for t in TENANTS}:
                outcome = "leak"
            else:
                outcome = "error other"
        with lock:
            outcomes[outcome] += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, plan))
    return outcomes


def lock_child(threads: int, rounds: int) -> None:
    """In its own process (its own settings, DATABASE_URL the pooler): session-level advisory locks."""
    setup_django(migrate=False)
    from django.db import connection

    results: Counter[str] = Counter()
    guard = threading.Lock()

    def worker(n: int) -> None:
        for i in range(rounds):
            key = 14_000_000 + n * 10_000 + i
            with connection.cursor() as cursor:  # the jobs.runner.exclusive pattern, autocommit
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
                held = cursor.fetchone()[0]
                cursor.execute("SELECT 1")  # the work in between
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
                released = cursor.fetchone()[0]
            with guard:
                results["taken" if held else "not taken"] += 1
                results["released" if released else "unlock found no lock"] += 1
        connection.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid BETWEEN 14000000 AND 14999999"
        )
        results["still held on the server"] = cursor.fetchone()[0]
    print(json.dumps(results))


def statement_overhead(blocks: int = 10, per_block: int = 200) -> dict[str, float]:
    """Median microseconds per ORM read in one tenant, directly against PostgreSQL (no pooler), the
    django-tenants backend and ``pgtenancy.transaction_pooling`` in alternating blocks in one process:
    what sending ``SET LOCAL search_path`` with every statement costs."""
    import statistics

    from django.db import connections

    from crm.models import Contact

    engines = {
        "django-tenants backend": "django_tenants.postgresql_backend",
        "statement path (DATABASE_POOLER_TRANSACTION_MODE)": "pgtenancy.transaction_pooling",
    }
    base = connections["default"].settings_dict
    for name, engine in engines.items():
        backend = __import__(f"{engine}.base", fromlist=["DatabaseWrapper"])
        settings_dict = {**base, "ENGINE": engine, "DISABLE_SERVER_SIDE_CURSORS": True}
        connections[name] = backend.DatabaseWrapper(settings_dict, name)
        connections[name].set_schema(TENANTS[0])
    samples: dict[str, list[float]] = {name: [] for name in engines}
    try:
        for _ in range(blocks):
            for name in engines:
                started = time.perf_counter()
                for _ in range(per_block):
                    Contact.objects.using(name).filter(id=MARKER_ID).first()
                samples[name].append((time.perf_counter() - started) / per_block * 1e6)
    finally:
        for name in engines:
            connections[name].close()
            del connections[name]
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--pool-size", type=int, default=2, help="PgBouncer server connections")
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), default=list(CONFIGS), help="none: overhead only")
    parser.add_argument("--lock-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lock_child:
        return lock_child(*args.lock_child)
    bouncer_port = PORT + 2
    setup_django()
    upstream = os.environ["DATABASE_URL"]
    ensure_markers()

    rows = []
    for name in args.only:
        pool_mode, extra = CONFIGS[name]
        server = pooled(upstream, pool_mode, bouncer_port, args.pool_size) if pool_mode else nullcontext(upstream)
        with server as url, patch.dict(os.environ, {"DATABASE_URL": url, **extra}):
            # the configuration's CONN_MAX_AGE, else persistent connections as in the other benchmarks
            server_env = {"CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "600")}
            with gunicorn(PORT, workers=args.workers, env=server_env) as base:
                started = time.monotonic()
                outcomes = http_check(base, args.requests, args.clients)
                elapsed = time.monotonic() - started
            locks = child("pooler-check", "--lock-child", str(args.clients), "50", env={"DATABASE_URL": url})
        rows.append((name, outcomes, args.requests / elapsed, locks))
        print(f"{name}: {dict(outcomes)} locks {locks}", file=sys.stderr)

    overhead = statement_overhead()
    print(
        f"\n{args.requests} requests, {args.clients} concurrent clients, {args.workers} gunicorn workers, "
        f"PgBouncer pool_size {args.pool_size}; {load()}\n"
    )
    header = ["configuration", "own tenant", "other tenant's row", "errors", "req/s"]
    header += ["advisory unlocks that found no lock", "locks left held"]
    table_rows = []
    for name, outcomes, rate, locks in rows:
        errors = ", ".join(f"{v} x {k[6:]}" for k, v in sorted(outcomes.items()) if k.startswith("error")) or "0"
        held = locks.get("still held on the server", 0)
        table_rows.append(
            [name, outcomes["ok"], outcomes["leak"], errors, f"{rate:.0f}", locks.get("unlock found no lock", 0), held]
        )
    print(table(header, table_rows))
    first = next(iter(overhead.values()))
    rows = [[name, f"{value:.0f}", f"{value / first:.2f}"] for name, value in overhead.items()]
    print(
        "\n"
        + table(["backend, direct to PostgreSQL, one tenant", "µs per ORM read (median of 10 blocks)", "ratio"], rows)
    )
    return None
