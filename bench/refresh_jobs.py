"""Throughput of the proactive refresh job: accounts refreshed per second at 100, 1,000 and 10,000
due accounts with 1 and 2 Celery worker processes, against a loopback token endpoint
(bench/loopback_provider.py). Each worker runs 8 threads (``--pool threads``): a refresh spends its
time waiting on PostgreSQL round trips and commits, so threads overlap those waits. The real path:
dispatcher task -> claimed batches -> the single-flight refresh (advisory lock, row lock, encrypted
credential write) -> provider.

Run: ``DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/refresh_jobs.py [--sizes 100,1000,10000]``
(uses the database and Redis it is given; creates the tenant ``benchjobs`` and its users once).
``--before ../other-worktree``: each round first with the workers running that checkout's code (e.g.
``git worktree add ../base main``; same database, Redis and provider), then with this one's.
``--profile N``: no Celery; N refreshes in one process under cProfile, with the PostgreSQL statements
and commits per account.

Then the refresh *rate* with short-lived tokens: ``--hourly-accounts`` accounts whose provider issues
5-minute tokens, the job every minute for an hour, in one process with the connectors' clock moved a
minute per run (``connectors.clock``; the real path otherwise: claims, single-flight refresh,
provider): refreshes per account per hour, counted at the provider (target <= 24: one per half
lifetime at most, here one every 3 minutes = 20)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import setup_django  # noqa: E402
from probe.ready import stop_process  # noqa: E402

SLUG = "benchjobs"
WORKER_ENV = {
    "CONNECTORS_REFRESH_JITTER_SECONDS": "0",
    "CONNECTORS_REFRESH_BATCH_SIZE": "25",
    "CONNECTORS_REFRESH_PARALLEL_TASKS": "16",
    "LOG_LEVEL": "WARNING",
}


@contextmanager
def loopback_provider(delay_ms: int = 0):
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "loopback_provider.py"), str(delay_ms)], stdout=subprocess.PIPE, text=True
    )
    try:
        yield json.loads(process.stdout.readline())["url"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def get_json(url: str, method: str = "GET") -> dict:
    import httpx

    return httpx.request(method, url, timeout=10).json()


@contextmanager
def celery_workers(
    count: int, env: dict[str, str] | None = None, log_dir: Path | None = None, threads: int = 8, code: Path = ROOT
):
    """``count`` worker processes running the code in ``code`` (this checkout, or another worktree
    for a side-by-side comparison: same database, same Redis, same provider)."""
    from config.celery import app

    with ExitStack() as stack:
        procs = []
        for i in range(count):
            out = open(log_dir / f"worker{i}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
            if log_dir:
                stack.callback(out.close)
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-n", f"w{i}-{os.getpid()}@bench"]
                + (["--pool", "threads", "--concurrency", str(threads)] if threads > 1 else ["--pool", "solo"])
                + ["-l", "warning", "--without-gossip", "--without-mingle"],
                cwd=code,
                env={**os.environ, **WORKER_ENV, **(env or {}), "PYTHONPATH": str(code)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            stack.callback(stop_process, proc)
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        yield procs


def prepare(users: int, provider_url: str) -> None:
    """The tenant, ``users`` members and one provider at the loopback endpoint (idempotent)."""
    from django_tenants.utils import schema_context

    from accounts.models import User
    from connectors.services import add_provider
    from tenants.models import Membership, Tenant
    from tenants.services import create_tenant

    create_tenant(slug=SLUG, name="Refresh benchmark")
    tenant = Tenant.objects.get(schema_name=SLUG)
    emails = [f"bench-{i}@benchjobs.example" for i in range(users)]
    have = set(User.objects.filter(email__in=emails).values_list("email", flat=True))
    User.objects.bulk_create([User(email=e, password="!") for e in emails if e not in have], batch_size=2000)
    ids = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))
    members = set(Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True))
    Membership.objects.bulk_create(
        [Membership(user_id=ids[e], tenant=tenant) for e in emails if ids[e] not in members], batch_size=2000
    )
    with schema_context(SLUG):
        add_provider(
            key="loopback",
            client_id="bench",
            client_secret="bench-secret",  # a loopback endpoint that ignores it
            endpoints={
                "authorization_endpoint": f"{provider_url}/authorize",
                "token_endpoint": f"{provider_url}/token",
                "revocation_endpoint": f"{provider_url}/revoke",
            },
            auth_method="client_secret_post",
        )


def create_due_accounts(count: int, expires_in: int = 300, lifetime: int = 3600) -> list[int]:
    """``count`` accounts whose ``lifetime``-second tokens expire in ``expires_in`` seconds."""
    from django_tenants.utils import schema_context

    from accounts.models import User
    from connectors import clock
    from connectors.models import ConnectedAccount, Credential, Provider, ProviderBreaker

    emails = [f"bench-{i}@benchjobs.example" for i in range(count)]
    users = list(User.objects.filter(email__in=emails).order_by("pk").values_list("pk", flat=True))
    with schema_context(SLUG):
        ConnectedAccount.objects.all().delete()
        ProviderBreaker.objects.all().delete()  # nothing left over from an earlier round or run
        provider = Provider.objects.get(key="loopback")
        expires = clock.now() + timedelta(seconds=expires_in)
        issued = expires - timedelta(seconds=lifetime)
        accounts = ConnectedAccount.objects.bulk_create(
            [
                ConnectedAccount(
                    user_id=u,
                    provider=provider,
                    expires_at=expires,
                    token_issued_at=issued,
                    token_lifetime_seconds=lifetime,
                )
                for u in users
            ],
            batch_size=2000,
        )
        Credential.objects.bulk_create(
            [Credential(account=a, access_token="old", refresh_token=f"rt.{a.pk}.0") for a in accounts], batch_size=2000
        )
        return [a.pk for a in accounts]


def refreshed_count() -> int:
    from django_tenants.utils import schema_context

    from connectors.models import ConnectedAccount

    with schema_context(SLUG):
        return ConnectedAccount.objects.filter(refresh_count__gte=1).count()


def run_round(size: int, workers: int, provider_url: str, timeout: float, threads: int, code: Path) -> dict:
    from config.celery import app
    from connectors.tasks import refresh_expiring_in_tenant

    app.control.purge()  # nothing left over from the previous round
    with celery_workers(workers, threads=threads, code=code):
        create_due_accounts(size)
        get_json(f"{provider_url}/reset", "POST")
        started = time.monotonic()
        refresh_expiring_in_tenant.delay(SLUG)
        done = 0
        while done < size and time.monotonic() - started < timeout:
            time.sleep(0.1)
            done = refreshed_count()
        elapsed = time.monotonic() - started
    stats = get_json(f"{provider_url}/stats")
    return {
        "due": size,
        "workers": workers,
        "threads": threads,
        "refreshed": done,
        "seconds": round(elapsed, 2),
        "accounts_per_second": round(done / elapsed, 1),
        "provider_refreshes": stats["refreshes"],
        "refreshed_twice": stats["accounts_refreshed_twice"],
    }


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def counting_round_trips():
    """Count what one process sends PostgreSQL: statements (``execute_wrapper``) and transactions
    (commits and rollbacks, each also one BEGIN)."""
    from django.db import connection

    counts = {"statements": 0, "commits": 0, "rollbacks": 0}

    def count_statement(execute, sql, params, many, context):
        counts["statements"] += 1
        return execute(sql, params, many, context)

    commit, rollback = connection.commit, connection.rollback

    def counted_commit():
        counts["commits"] += 1
        return commit()

    def counted_rollback():
        counts["rollbacks"] += 1
        return rollback()

    connection.commit, connection.rollback = counted_commit, counted_rollback
    try:
        with connection.execute_wrapper(count_statement):
            yield counts
    finally:
        del connection.commit, connection.rollback


def profile(size: int, top: int) -> None:
    """In-process, one thread, no Celery: the tenant task's work over ``size`` due accounts under
    cProfile, with the statements and transactions sent per account."""
    import cProfile
    import pstats

    from django.db import connection
    from django_tenants.utils import tenant_context

    from connectors import lifecycle
    from tenants.models import Tenant

    with loopback_provider() as url:
        prepare(size, url)
        create_due_accounts(size)
        with tenant_context(Tenant.objects.get(schema_name=SLUG)):
            connection.cursor().execute("SELECT 1")  # connect and set the search path outside the count
            profiler = cProfile.Profile()
            started = time.monotonic()
            with counting_round_trips() as counts:
                profiler.enable()
                result = lifecycle.refresh_due_accounts(batch_size=25)
                profiler.disable()
            elapsed = time.monotonic() - started
    n = max(1, result.get("refreshed", 0))
    per = {k: round(v / n, 2) for k, v in counts.items()}
    print(json.dumps({"accounts": size, "result": result, "ms_per_account": round(elapsed * 1000 / n, 2), **per}))
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def refreshes_per_hour(accounts: int, provider_url: str, lifetime: int = 300, minutes: int = 60) -> dict:
    """The job every minute for ``minutes`` over ``accounts`` accounts with ``lifetime``-second tokens,
    in this process, the connectors' clock moved a minute per run; counted at the provider."""
    from django_tenants.utils import tenant_context

    from connectors import clock, lifecycle
    from tenants.models import Tenant

    get_json(f"{provider_url}/reset", "POST")
    get_json(f"{provider_url}/config?expires_in={lifetime}", "POST")
    per_run = []
    with clock.shifted():
        create_due_accounts(accounts, expires_in=lifetime, lifetime=lifetime)  # connected just now
        with tenant_context(Tenant.objects.get(schema_name=SLUG)):
            for _ in range(minutes):
                clock.advance(60)
                per_run.append(lifecycle.refresh_due_accounts(batch_size=25)["refreshed"])
    stats = get_json(f"{provider_url}/stats")
    get_json(f"{provider_url}/config?expires_in=3600", "POST")
    return {
        "accounts": accounts,
        "token_lifetime_s": lifetime,
        "job_runs": minutes,
        "provider_refreshes": stats["refreshes"],
        "refreshes_per_account_per_hour": round(stats["refreshes"] / accounts * 60 / minutes, 2),
        "max_per_account": stats["max_per_account"],
        "busiest_run": max(per_run),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--threads", type=int, default=8, help="worker concurrency (threads pool)")
    parser.add_argument(
        "--before", default="", help="a checkout of the old code (git worktree) to run side by side, same rounds"
    )
    parser.add_argument("--profile", type=int, default=0, help="profile N refreshes in-process instead")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--hourly-accounts", type=int, default=200, help="accounts for the refreshes-per-hour figure (0: skip it)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    setup_django()
    if args.profile:
        profile(args.profile, args.top)
        return
    from config.celery import app

    app.control.purge()
    codes = {"after": ROOT}
    if args.before:  # the old code first in each pair, then this checkout's
        codes = {"before": Path(args.before).resolve(), **codes}
    rows = []
    print(f"load average at start: {load()}", flush=True)
    with loopback_provider() as url:
        prepare(max([*sizes, args.hourly_accounts]), url)
        for size in sizes:
            for workers in [int(w) for w in args.workers.split(",")]:
                for name, code in codes.items():
                    row = {"code": name, **run_round(size, workers, url, args.timeout, args.threads, code)}
                    row["load"] = load()
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        hourly = refreshes_per_hour(args.hourly_accounts, url) if args.hourly_accounts else None
    print()
    print(f"worker pool: threads, concurrency {args.threads}; load average at the end: {load()}")
    print()
    print("| due accounts | workers | code | seconds | accounts/s | provider refreshes | refreshed twice | load |")
    print("|---:|---:|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['due']:,} | {r['workers']} | {r['code']} | {r['seconds']} | {r['accounts_per_second']} "
            f"| {r['provider_refreshes']:,} | {r['refreshed_twice']} | {r['load']} |"
        )
    if args.before:
        print()
        print("| due accounts | workers | before s | after s | speed-up |")
        print("|---:|---:|---:|---:|---:|")
        pairs: dict[tuple[int, int], dict[str, float]] = {}
        for r in rows:
            pairs.setdefault((r["due"], r["workers"]), {})[r["code"]] = r["seconds"]
        for (due, workers), pair in pairs.items():
            print(
                f"| {due:,} | {workers} | {pair['before']} | {pair['after']} | {pair['before'] / pair['after']:.2f}x |"
            )

    if hourly:
        print()
        print(json.dumps(hourly))
        verdict = "met" if hourly["refreshes_per_account_per_hour"] <= 24 else "NOT met"
        print(
            f"refreshes per account per hour with {hourly['token_lifetime_s']} s tokens, the job every minute: "
            f"{hourly['refreshes_per_account_per_hour']} (target <= 24: {verdict}; most for one account: "
            f"{hourly['max_per_account']}; busiest run: {hourly['busiest_run']} of {hourly['accounts']})"
        )


if __name__ == "__main__":
    main()
