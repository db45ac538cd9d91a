"""Many tenants: provisioning time per tenant, and authorized ``tools/call`` latency with the demo tenants
only against N tenants provisioned (one tenant called, or calls spread round-robin over all).

1. ``--reset`` drops the ``scale_*`` tenants of an earlier run first.
2. Baseline: the in-process median of ``crm_get_contact`` on acme, and wrk against gunicorn (``--wrk``).
3. Provisioning: ``--ways`` tenants from a spare schema, by every migration and by django-tenants'
   ``CloneSchema``, alternated with the template copy; then ``--tenants`` tenants through
   ``create_tenant`` (the copy), each with demo data: median, p95, first 10 against last 10.
4. The latencies with N tenants: one tenant, and spread (each call changes schema), first cold (each
   call the backend's first in its schema), then warm, in alternating blocks.
5. What grows: the PostgreSQL backend's memory, this process's RSS and functools caches.
6. ``--migrate`` (or ``--migrate-only``): ``migrate_schemas --tenant`` over every tenant with nothing to
   apply, current tenants left alone unless they lack a post_migrate receiver's row (the default,
   ``pgtenancy.schema_migrations``) and a whole ``migrate`` each. ``bench/migrate_scale.py`` times
   deploys that add a shared-only or a tenant migration, against an earlier checkout."""

from __future__ import annotations

import gc
import os
import secrets
import statistics
import subprocess
import sys
import time

from bench.common import (
    RoundRobin,
    backend_memory,
    bench_parser,
    email_of,
    interleaved,
    load,
    median_ms,
    p95_ms,
    seconds,
    setup_django,
    table,
    target,
    tenant_targets,
    wrk_modes,
)

PREFIX = "scale_"


def reset() -> None:
    from django.db import connection

    from tenants.models import Tenant

    started = time.perf_counter()
    connection.set_schema_to_public()
    dropped = [t.delete(force_drop=True) for t in Tenant.objects.filter(schema_name__startswith=PREFIX)]
    print(f"dropped {len(dropped)} tenants of an earlier run in {time.perf_counter() - started:.1f} s")


def demo_data(slug: str, password_hash: str) -> None:
    """What bootstrap_demo gives acme: an admin and a member (one precomputed password hash: hashing
    2,000 passwords would be the benchmark), three contacts with a note each."""
    from django_tenants.utils import schema_context

    from accounts.models import User
    from crm.models import Contact, Note
    from tenants.services import add_user

    for role in ("admin", "member"):
        User.objects.get_or_create(email=email_of(role, slug), defaults={"password": password_hash})
        add_user(slug=slug, email=email_of(role, slug), password=None, role=role)
    author = User.objects.get(email=email_of("admin", slug)).pk
    with schema_context(slug):
        if not Contact.objects.exists():
            for n, name in enumerate(("Ada Lovelace", "Grace Hopper", "Alan Turing")):
                contact = Contact.objects.create(name=name, email=f"c{n}@{slug}.example", company=slug)
                Note.objects.create(contact=contact, body=f"note {n}", author_user_id=author)


def provision(count: int) -> tuple[list[float], list[float]]:
    """The direct copy (no spare schemas: without a Celery worker the pool would not be refilled)."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password

    from tenants.models import Tenant
    from tenants.services import create_tenant

    settings.TENANT_SPARE_SCHEMAS = 0
    password_hash = make_password(secrets.token_urlsafe(16))
    existing = set(Tenant.objects.filter(schema_name__startswith=PREFIX).values_list("schema_name", flat=True))
    schema_times, data_times = [], []
    for i in range(count):
        slug = f"{PREFIX}{i:04d}"
        if slug in existing:
            demo_data(slug, password_hash)  # idempotent: completes a tenant an interrupted run left without data
            continue
        schema_times.append(seconds(create_tenant, slug=slug, name=f"Scale {i}"))
        data_times.append(seconds(demo_data, slug, password_hash))
        if len(schema_times) % 100 == 0:
            print(f"  {len(schema_times)} tenants, last one {schema_times[-1] * 1000:.0f} ms ({load()})", flush=True)
    return schema_times, data_times


def other_ways(n: int) -> dict[str, list[float]]:
    """The same tenant schema from a spare, by replaying every migration (the path before the template)
    and by django-tenants' own clone (``CloneSchema``, PL/pgSQL), alternated with the template copy."""
    from django.conf import settings
    from django.db import connection, transaction
    from django_tenants.clone import CloneSchema

    from pgtenancy.spares import replenish
    from tenants.models import Tenant
    from tenants.services import create_tenant

    def made(slug: str, spares: int, by_copy: bool = True) -> None:
        settings.TENANT_SPARE_SCHEMAS, settings.TENANT_PROVISION_BY_COPY = spares, by_copy
        try:
            create_tenant(slug=slug, name=slug)
        finally:
            settings.TENANT_PROVISION_BY_COPY = True

    def cloned(slug: str) -> None:
        with transaction.atomic():
            CloneSchema().clone_schema(settings.TENANT_TEMPLATE_SCHEMA, slug)

    ways = {
        "a spare schema (create_tenant)": lambda slug: made(slug, 1),
        "copy of the template (create_tenant)": lambda slug: made(slug, 0),
        "every migration (create_tenant)": lambda slug: made(slug, 0, by_copy=False),
        "django-tenants CloneSchema (schema only)": cloned,
    }
    pool = settings.TENANT_SPARE_SCHEMAS
    connection.set_schema_to_public()
    settings.TENANT_SPARE_SCHEMAS = 1
    replenish()  # untimed warm-up: a process's first creation reads the template's catalog and, with a
    made(f"{PREFIX}way_warmup", 1)  # pool, connects to the Celery broker
    Tenant.objects.get(schema_name=f"{PREFIX}way_warmup").delete(force_drop=True)
    times: dict[str, list[float]] = {way: [] for way in ways}
    for i in range(n):
        for number, (way, make) in enumerate(ways.items()):
            slug = f"{PREFIX}way_{i}_{number}"
            if way.startswith("a spare"):
                settings.TENANT_SPARE_SCHEMAS = 1
                replenish()  # not timed: the pool is refilled in the background after each creation
            times[way].append(seconds(make, slug))
            connection.set_schema_to_public()
            if way.startswith("django-tenants"):
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP SCHEMA "{slug}" CASCADE')
            else:
                Tenant.objects.get(schema_name=slug).delete(force_drop=True)
    settings.TENANT_SPARE_SCHEMAS = pool
    connection.set_schema_to_public()
    return times


def latencies(modes: dict[str, RoundRobin], calls: int, blocks: int = 6) -> dict[str, float]:
    """Median seconds per call of each mode, in alternating blocks."""
    for mode in modes.values():
        mode.warm_up(20)
    runs = {name: lambda m=mode: m.run(max(1, calls // blocks)) for name, mode in modes.items()}
    return {
        name: statistics.median([s for block in found for s in block])
        for name, found in interleaved(runs, blocks).items()
    }


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))


def project_caches() -> dict[str, int]:
    """Sizes of every functools cache in the project's modules and Django's URL resolver cache."""
    from django.urls.resolvers import _get_cached_resolver

    roots = {
        "tenants",
        "mcp_tools",
        "oauth",
        "declarations",
        "crm",
        "connectors",
        "observability",
        "config",
        "accounts",
    }
    sizes = {"django.urls resolver cache": _get_cached_resolver.cache_info().currsize}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in roots:
            continue
        for attr, value in vars(module).items():
            info = getattr(value, "cache_info", None)
            if callable(info) and getattr(value, "__module__", "").split(".")[0] in roots:  # not stdlib's
                sizes[f"{name}.{attr}"] = info().currsize
    return sizes


def migrate_report(full: bool) -> list[str]:
    """``migrate_schemas --tenant`` (template and every tenant, its own process) with nothing to apply:
    the shortcut for current tenants and, with ``full``, a whole ``migrate`` per tenant."""
    from django.conf import settings
    from django.db import connection

    from tenants.models import Tenant

    count = Tenant.objects.count()
    connection.close()
    processes = settings.TENANT_MULTIPROCESSING_MAX_PROCESSES
    rows = []
    command = [sys.executable, "manage.py", "migrate_schemas", "--tenant", "--executor", "multiprocessing", "-v", "0"]
    for skip in [True] + ([False] if full else []):  # the shortcut runs receivers in the main process
        print(f"migrate_schemas --executor=multiprocessing skip_current={skip} ({load()})", flush=True)
        env = {**os.environ, "TENANT_MIGRATE_SKIP_CURRENT": "1" if skip else "0"}
        took = seconds(subprocess.run, command, check=True, stdout=subprocess.DEVNULL, env=env)
        how = "`pgtenancy.schema_migrations`" if skip else "whole `migrate` each"
        rows.append(
            [f"multiprocessing ({processes} processes)", how, f"{took:.1f} s", f"{took / (count + 1) * 1000:.0f} ms"]
        )
    header = ["executor", "current tenants", "wall time", "per tenant"]
    title = f"\n## migrate_schemas --tenant over {count} tenants + the template, nothing to apply ({load()})\n"
    return [title, table(header, rows, "llrr"), f"\n({load()} at the end)"]


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300, help="in-process calls per mode")
    parser.add_argument("--reset", action="store_true", help="drop the scale_* tenants of an earlier run first")
    parser.add_argument("--ways", type=int, default=3, help="tenants made each other way, for the ratio")
    parser.add_argument("--migrate", action="store_true", help="also time migrate_schemas over every tenant")
    parser.add_argument("--migrate-only", action="store_true", help="only time migrate_schemas (as --migrate)")
    parser.add_argument("--wrk", type=int, default=5, help="wrk seconds per round (0: no wrk)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    setup_django()
    from django.db import connection

    from tenants.models import Tenant

    if args.migrate_only:
        return print("\n".join(migrate_report(full=True)))
    if args.reset:
        reset()
    acme = [target("acme")]
    before_count = Tenant.objects.count()
    print(f"\nbaseline with {before_count} tenants ({load()})", flush=True)
    base = latencies({"one": RoundRobin(acme)}, args.calls)["one"]
    base_wrk = statistics.median(wrk_modes({"one": acme}, args.wrk, args.rounds)["one"]) if args.wrk else None
    print(f"  acme, in-process median {base * 1000:.2f} ms; wrk {base_wrk} req/s", flush=True)
    cache_before, rss_before = project_caches(), rss_mb()

    ways = other_ways(args.ways) if args.ways else {}
    print(f"\nprovisioning up to {args.tenants} tenants ({load()})", flush=True)
    started = time.perf_counter()
    schema_times, data_times = provision(args.tenants)
    total, after_count = time.perf_counter() - started, Tenant.objects.count()
    print(f"minting a token in each of {args.tenants} tenants", flush=True)
    spread = tenant_targets(args.tenants, PREFIX)
    print(f"latency with {after_count} tenants ({load()})", flush=True)
    gc.collect()
    modes = {"one": RoundRobin(acme), "spread": RoundRobin(spread)}
    # the first pass: each call this backend's first in that schema (cold); the second carries on (warm)
    cold = latencies(modes, max(args.calls, len(spread)))
    warm = latencies(modes, max(args.calls, len(spread)))
    after_wrk = wrk_modes({"one": acme, "spread": spread}, args.wrk, args.rounds) if args.wrk else {}
    after_wrk = {name: statistics.median(rates) for name, rates in after_wrk.items()}
    connection.close()  # a fresh backend (this one also ran the provisioning DDL): acme, then every tenant
    RoundRobin(acme).run(50)
    mem_one = backend_memory()
    RoundRobin(spread).run(len(spread))
    mem_after, cache_after, rss_after = backend_memory(), project_caches(), rss_mb()

    ms = lambda values: f"{median_ms(values):.1f}"  # noqa: E731
    report = [
        f"\n## Provisioning ({len(schema_times)} tenants made in this run, {total:.0f} s with demo data; {load()})\n"
    ]
    if schema_times:
        rows = [
            [label, ms(values), f"{p95_ms(values):.1f}", ms(values[:10]), ms(values[-10:])]
            for label, values in (
                ("copy of the template (create_tenant)", schema_times),
                ("demo data (2 users, memberships, 3 contacts, 3 notes)", data_times),
            )
        ]
        report.append(table(["tenant schema", "median ms", "p95 ms", "first 10 median", "last 10 median"], rows))
    if ways:
        report.append(f"\nSide by side, alternated ({args.ways} each, made before the {args.tenants}):\n")
        rows = [[way, ms(values), ", ".join(f"{v * 1000:.0f}" for v in values)] for way, values in ways.items()]
        report.append(table(["way", "median ms", "each"], rows, "lrl"))
    report.append("\n## Authorized tools/call (crm_get_contact), in-process median ms\n")
    f2 = lambda seconds: f"{seconds * 1000:.2f}"  # noqa: E731
    rows = [
        [before_count, f2(base), "—"],
        [f"{after_count}, spread cold (first call per schema on this backend)", f2(cold["one"]), f2(cold["spread"])],
        [f"{after_count}, spread warm (every schema seen once)", f2(warm["one"]), f2(warm["spread"])],
    ]
    report.append(
        table(["tenants", "one tenant (acme)", f"spread round-robin over {len(spread)} tenants"], rows, "rrr")
    )
    report.append(
        f"\n{after_count} vs {before_count} tenants, one tenant: {(cold['one'] / base - 1) * 100:+.1f} %; "
        f"side by side at {after_count}: spread cold {(cold['spread'] / cold['one'] - 1) * 100:+.1f} %, "
        f"spread warm {(warm['spread'] / warm['one'] - 1) * 100:+.1f} % (target: within 10 %)"
    )
    if args.wrk:
        report.append(f"\nwrk -t2 -c8 -d{args.wrk}s x {args.rounds} rounds (median req/s), gunicorn 2 sync workers:\n")
        rows = [
            [before_count, f"{base_wrk:.1f}", "—"],
            [after_count, f"{after_wrk['one']:.1f}", f"{after_wrk['spread']:.1f}"],
        ]
        report.append(table(["tenants", "one tenant (acme)", "spread over every tenant"], rows, "rrr"))
    report.append("\n## What grows with the tenant count (this process, after calls to every tenant)\n")
    rows = [
        [
            "PostgreSQL backend memory, MB (all contexts; new backend: 50 calls to acme, then one call to each of "
            f"{len(spread)} tenants)",
            f"{mem_one[0]:.1f}",
            f"{mem_after[0]:.1f}",
        ],
        ["of which CacheMemoryContext (relcache, catcache), MB", f"{mem_one[1]:.1f}", f"{mem_after[1]:.1f}"],
        ["Python process RSS, MB", f"{rss_before:.1f}", f"{rss_after:.1f}"],
    ]
    rows += [
        [f"`{n}` entries", cache_before.get(n, 0), cache_after.get(n, 0)] for n in sorted({*cache_before, *cache_after})
    ]
    report.append(table(["", "before", "after"], rows))
    if args.migrate:
        report += migrate_report(full=True)
    print("\n".join(report))
    return None
