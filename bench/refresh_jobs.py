"""The proactive refresh job: accounts refreshed per second at 100, 1,000 and 10,000 due accounts with 1
and 2 Celery worker processes of 8 threads (a refresh waits on PostgreSQL round trips and commits, so
threads overlap those waits), against the loopback token endpoint (bench/loopback_provider.py), the
real path: dispatcher task -> claimed batches -> single-flight refresh -> provider. Uses the database
and Redis it is given; creates the tenant ``benchjobs`` and its users once. ``--before TREE``: each
round first with workers running that checkout's code. ``--profile N``: no Celery, N refreshes in one
process under cProfile, with statements and commits per account. Then the refresh rate with
5-minute tokens: the job every minute for an hour in one process, the connectors' clock moved a minute
per run, refreshes per account per hour counted at the provider (target <= 24)."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bench.common import (
    ROOT,
    bench_parser,
    celery_workers,
    get_json,
    load,
    loopback_provider,
    profiled,
    setup_django,
    table,
)

SLUG = "benchjobs"
WORKER_ENV = {
    "CONNECTORS_REFRESH_JITTER_SECONDS": "0",
    "CONNECTORS_REFRESH_BATCH_SIZE": "25",
    "CONNECTORS_REFRESH_PARALLEL_TASKS": "16",
}


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
    new = [Membership(user_id=ids[e], tenant=tenant) for e in emails if ids[e] not in members]
    Membership.objects.bulk_create(new, batch_size=2000)
    paths = {"authorization": "authorize", "token": "token", "revocation": "revoke"}
    endpoints = {f"{name}_endpoint": f"{provider_url}/{path}" for name, path in paths.items()}
    with schema_context(SLUG):  # the loopback endpoint ignores the secret
        add_provider(
            key="loopback",
            client_id="bench",
            client_secret="bench-secret",
            endpoints=endpoints,
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
        times = {"expires_at": expires, "token_issued_at": expires - timedelta(seconds=lifetime)}
        accounts = ConnectedAccount.objects.bulk_create(
            [ConnectedAccount(user_id=u, provider=provider, token_lifetime_seconds=lifetime, **times) for u in users],
            batch_size=2000,
        )
        credentials = [Credential(account=a, access_token="old", refresh_token=f"rt.{a.pk}.0") for a in accounts]
        Credential.objects.bulk_create(credentials, batch_size=2000)
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
    with celery_workers(workers, threads=threads, code=code, env=WORKER_ENV):
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


@contextmanager
def counting_round_trips():
    """What one process sends PostgreSQL: statements, and transactions (commits and rollbacks)."""
    from django.db import connection

    counts = {"statements": 0, "commits": 0, "rollbacks": 0}

    def count_statement(execute, sql, params, many, context):
        counts["statements"] += 1
        return execute(sql, params, many, context)

    def counted(name: str, real):
        def call():
            counts[name + "s"] += 1
            return real()

        return call

    connection.commit, connection.rollback = (
        counted("commit", connection.commit),
        counted("rollback", connection.rollback),
    )
    try:
        with connection.execute_wrapper(count_statement):
            yield counts
    finally:
        del connection.commit, connection.rollback


def profile(size: int, top: int) -> None:
    """One thread, no Celery: the tenant task's work over ``size`` due accounts under cProfile."""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from connectors import lifecycle
    from tenants.models import Tenant

    result = {}
    with loopback_provider() as url:
        prepare(size, url)
        create_due_accounts(size)
        with tenant_context(Tenant.objects.get(schema_name=SLUG)):
            connection.cursor().execute("SELECT 1")  # connect and set the search path outside the count
            started = time.monotonic()
            with counting_round_trips() as counts:
                text = profiled(
                    lambda: result.update(lifecycle.refresh_due_accounts(batch_size=25)), top=top, where="."
                )
            elapsed = time.monotonic() - started
    n = max(1, result.get("refreshed", 0))
    per = {k: round(v / n, 2) for k, v in counts.items()}
    print(json.dumps({"accounts": size, "result": result, "ms_per_account": round(elapsed * 1000 / n, 2), **per}))
    print(text)


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


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--threads", type=int, default=8, help="worker concurrency (threads pool)")
    parser.add_argument("--before", default="", help="a checkout of the old code, run side by side, same rounds")
    parser.add_argument("--profile", type=int, default=0, help="profile N refreshes in-process instead")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--hourly-accounts", type=int, default=200, help="accounts for refreshes per hour (0: skip)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    setup_django()
    if args.profile:
        return profile(args.profile, args.top)
    from config.celery import app

    app.control.purge()
    codes = {"before": Path(args.before).resolve()} if args.before else {}  # the old code first in each pair
    codes["after"] = ROOT
    rows = []
    print(f"{load()} at start", flush=True)
    with loopback_provider() as url:
        prepare(max([*sizes, args.hourly_accounts]), url)
        for size in sizes:
            for workers in [int(w) for w in args.workers.split(",")]:
                for name, code in codes.items():
                    row = {
                        "code": name,
                        **run_round(size, workers, url, args.timeout, args.threads, code),
                        "load": load(),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        hourly = refreshes_per_hour(args.hourly_accounts, url) if args.hourly_accounts else None
    print(f"\nworker pool: threads, concurrency {args.threads}; {load()} at the end\n")
    header = ["due accounts", "workers", "code", "seconds", "accounts/s", "provider refreshes", "refreshed twice"]
    header += ["load"]
    keys = ["due", "workers", "code", "seconds", "accounts_per_second", "provider_refreshes", "refreshed_twice", "load"]
    print(table(header, [[f"{r[k]:,}" if isinstance(r[k], int) else r[k] for k in keys] for r in rows], "rrlrrrrl"))
    if args.before:
        pairs: dict[tuple[int, int], dict[str, float]] = {}
        for r in rows:
            pairs.setdefault((r["due"], r["workers"]), {})[r["code"]] = r["seconds"]
        speedups = [
            [f"{due:,}", w, p["before"], p["after"], f"{p['before'] / p['after']:.2f}x"]
            for (due, w), p in pairs.items()
        ]
        print("\n" + table(["due accounts", "workers", "before s", "after s", "speed-up"], speedups, "rrrrr"))
    if hourly:
        verdict = "met" if hourly["refreshes_per_account_per_hour"] <= 24 else "NOT met"
        print(f"\n{json.dumps(hourly)}")
        print(
            f"refreshes per account per hour with {hourly['token_lifetime_s']} s tokens, the job every minute: "
            f"{hourly['refreshes_per_account_per_hour']} (target <= 24: {verdict}; most for one account: "
            f"{hourly['max_per_account']}; busiest run: {hourly['busiest_run']} of {hourly['accounts']})"
        )
    return None
