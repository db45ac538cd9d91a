"""Many tenants (issue 14, parts 3 and 4): provisioning time per tenant, and authorized ``tools/call``
latency with 1 tenant against N tenants provisioned, one tenant called or calls spread over all.

    .venv/bin/python bench/tenants_scale.py [--tenants 1000] [--calls 300] [--reset] [--migrate]
    make bench-tenants ARGS="--tenants 1000 --reset --migrate"

1. ``--reset`` drops the tenants an earlier run made (``scale_*``), so the "1 tenant" row really has
   only the demo tenants (acme, globex) beside it.
2. Baseline: in-process median latency of an authorized ``tools/call`` (``crm_get_contact``) on acme,
   and under wrk against gunicorn (2 sync workers) if wrk is there.
3. Provisioning: a few tenants from a spare schema (``pgtenancy.spares``), by running every migration
   and by django-tenants' ``CloneSchema`` (for the ratio, dropped again), then ``--tenants`` tenants
   through ``tenants.services.create_tenant`` (a direct copy of the template), each followed by its
   demo data (an admin and a member, three contacts with a note each; then a client and a token
   each): median, p95, first 10 against last 10.
4. The same latencies with N tenants: one tenant called, and calls spread round-robin over every
   tenant (each call changes schema, so ``TENANT_LIMIT_SET_CALLS`` saves nothing and PostgreSQL's
   per-backend catalog caches see every schema), first cold (each call the backend's first in its
   schema), then warm. Blocks alternate so drift hits both alike.
5. What grows with the tenant count: this process's RSS and functools caches, the PostgreSQL backend's
   memory (``pg_backend_memory_contexts``), after calls spread over every tenant.
6. ``--migrate`` (or ``--migrate-only``): ``migrate_schemas --tenant --executor=multiprocessing`` over
   every tenant with nothing to apply (a deploy without tenant migrations), current tenants left alone
   unless they lack a post_migrate receiver's row (the default, ``pgtenancy.schema_migrations``) and a
   whole ``migrate`` each (``TENANT_MIGRATE_SKIP_CURRENT=0``, the django-tenants way). Processes:
   ``TENANT_MIGRATION_PROCESSES`` (default the core count). ``bench/migrate_scale.py`` times deploys
   that add a shared-only or a tenant migration, against an earlier checkout.

Run on demand; never part of the tests.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import email_of, gunicorn, setup_django
from bench.common import mint_token as common_mint_token

setup_django()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from bench.common import MODERN, ensure_wrk, mcp_call_body, mcp_round_robin_script, run_wrk  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "8765"))
HOST = f"127.0.0.1:{PORT}"
PREFIX = "scale_"
PASSWORD_HASH: str | None = None


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


# --- tenants and their demo data ----------------------------------------------------------------------
def scale_slugs() -> list[str]:
    from tenants.models import Tenant

    return list(
        Tenant.objects.filter(schema_name__startswith=PREFIX)
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )


def reset() -> None:
    from tenants.models import Tenant

    slugs = scale_slugs()
    started = time.perf_counter()
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(schema_name__startswith=PREFIX):
        tenant.delete(force_drop=True)
    print(f"dropped {len(slugs)} tenants of an earlier run in {time.perf_counter() - started:.1f} s")


def demo_data(slug: str) -> None:
    """What bootstrap_demo gives acme, for any tenant: an admin and a member (one precomputed password
    hash: hashing 2,000 passwords would be the benchmark), contacts with notes, and an MCP token."""
    from accounts.models import User
    from crm.models import Contact, Note
    from tenants.services import add_user

    global PASSWORD_HASH
    if PASSWORD_HASH is None:
        from django.contrib.auth.hashers import make_password

        PASSWORD_HASH = make_password(secrets.token_urlsafe(16))
    for role in ("admin", "member"):
        email = email_of(role, slug)
        User.objects.get_or_create(email=email, defaults={"password": PASSWORD_HASH})
        add_user(slug=slug, email=email, password=None, role=role)
    author = User.objects.get(email=email_of("admin", slug)).pk
    with schema_context(slug):
        if Contact.objects.exists():
            return
        for n, name in enumerate(("Ada Lovelace", "Grace Hopper", "Alan Turing")):
            contact = Contact.objects.create(name=name, email=f"c{n}@{slug}.example", company=slug)
            Note.objects.create(contact=contact, body=f"note {n}", author_user_id=author)


def mint_token(slug: str) -> tuple[str, int]:
    return common_mint_token(slug, HOST)


def provision(count: int) -> tuple[list[float], list[float]]:
    """The direct copy (no spare schemas: without a Celery worker the pool would not be refilled)."""
    from tenants.services import create_tenant

    settings.TENANT_SPARE_SCHEMAS = 0

    existing = set(scale_slugs())
    schema_times, data_times = [], []
    for i in range(count):
        slug = f"{PREFIX}{i:04d}"
        if slug in existing:
            demo_data(slug)  # idempotent: completes a tenant an interrupted run left without its data
            continue
        started = time.perf_counter()
        create_tenant(slug=slug, name=f"Scale {i}")
        schema_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        demo_data(slug)
        data_times.append(time.perf_counter() - started)
        if len(schema_times) % 100 == 0:
            print(f"  {len(schema_times)} tenants, last one {schema_times[-1] * 1000:.0f} ms ({load()})", flush=True)
    return schema_times, data_times


def other_ways(n: int) -> dict[str, list[float]]:
    """The same tenant schema made by replaying every migration (the path before the template) and by
    django-tenants' own clone (``CloneSchema``, PL/pgSQL), alternated with the template copy."""
    from django.db import transaction
    from django_tenants.clone import CloneSchema

    connection.set_schema_to_public()

    from pgtenancy.spares import replenish
    from tenants.models import Tenant
    from tenants.services import create_tenant

    times: dict[str, list[float]] = {
        "a spare schema (create_tenant)": [],
        "copy of the template (create_tenant)": [],
        "every migration (create_tenant)": [],
        "django-tenants CloneSchema (schema only)": [],
    }
    pool = settings.TENANT_SPARE_SCHEMAS
    settings.TENANT_SPARE_SCHEMAS = 1
    replenish()  # untimed warm-up: a process's first creation reads the template's catalog and, with a
    create_tenant(slug=f"{PREFIX}way_warmup", name="warm-up")  # pool, connects to the Celery broker
    Tenant.objects.get(schema_name=f"{PREFIX}way_warmup").delete(force_drop=True)
    for i in range(n):
        for way in times:
            slug = f"{PREFIX}way_{i}_{len(times[way])}_{abs(hash(way)) % 1000}"
            settings.TENANT_SPARE_SCHEMAS = 1 if way.startswith("a spare") else 0
            if way.startswith("a spare"):
                replenish()  # not timed: the pool is refilled in the background after each creation
            started = time.perf_counter()
            if way.startswith("django-tenants"):
                with transaction.atomic():
                    CloneSchema().clone_schema(settings.TENANT_TEMPLATE_SCHEMA, slug)
                times[way].append(time.perf_counter() - started)
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP SCHEMA "{slug}" CASCADE')
                continue
            settings.TENANT_PROVISION_BY_COPY = not way.startswith("every migration")
            try:
                create_tenant(slug=slug, name=slug)
            finally:
                settings.TENANT_PROVISION_BY_COPY = True
            times[way].append(time.perf_counter() - started)
            connection.set_schema_to_public()
            Tenant.objects.get(schema_name=slug).delete(force_drop=True)
    settings.TENANT_SPARE_SCHEMAS = pool
    connection.set_schema_to_public()
    return times


# --- latency -----------------------------------------------------------------------------------------
def call_headers(token: str) -> dict[str, str]:
    return {
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_MCP_PROTOCOL_VERSION": MODERN,
        "HTTP_MCP_METHOD": "tools/call",
        "HTTP_MCP_NAME": "crm_get_contact",
    }


_next: dict[int, int] = {}  # where each target list's round-robin stopped, so blocks carry on from there


def latency(targets: list[tuple[str, str, int]], calls: int) -> list[float]:
    """Wall time of ``calls`` authorized tools/call in this process, round-robin over ``targets``."""
    client = Client(HTTP_HOST=HOST)
    prepared = [(f"/t/{slug}/mcp", mcp_call_body(cid), call_headers(token)) for slug, token, cid in targets]
    samples = []
    start = _next.get(id(targets), 0)
    _next[id(targets)] = start + calls
    for i in range(start, start + calls):
        path, body, headers = prepared[i % len(prepared)]
        started = time.perf_counter()
        response = client.post(path, data=body, content_type="application/json", **headers)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200 or b'"isError": false' not in response.content:
            raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
    return samples


def interleaved(modes: dict[str, list[tuple[str, str, int]]], calls: int, blocks: int = 6) -> dict[str, float]:
    for targets in modes.values():
        latency(targets[:20], 20)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(blocks):
        for name, targets in modes.items():
            samples[name] += latency(targets, max(1, calls // blocks))
    return {name: statistics.median(values) for name, values in samples.items()}


def wrk_rate(wrk: str, targets: list[tuple[str, str, int]], duration: int) -> float:
    """Requests per second against gunicorn, round-robin over ``targets`` (one slug, token and contact each)."""
    return run_wrk(wrk, f"http://{HOST}/", mcp_round_robin_script(targets), duration, 8)


def wrk_rounds(wrk: str, modes: dict[str, list[tuple[str, str, int]]], duration: int, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in modes}
    with gunicorn(PORT):
        for targets in modes.values():
            wrk_rate(wrk, targets, 2)  # warm-up: every worker's connection has seen every schema once
        for _ in range(rounds):
            for name, targets in modes.items():
                samples[name].append(wrk_rate(wrk, targets, duration))
    return {name: statistics.median(values) for name, values in samples.items()}


# --- what grows --------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def backend_memory_mb() -> tuple[float, float]:
    """This connection's PostgreSQL backend: all memory contexts, and CacheMemoryContext (relcache,
    catcache) with its direct children (the relcache's per-index contexts)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(total_bytes), sum(total_bytes) FILTER (WHERE 'CacheMemoryContext' IN (name, parent)) "
            "FROM pg_backend_memory_contexts"
        )
        total, cache = cursor.fetchone()
    return total / 2**20, (cache or 0) / 2**20


def project_caches() -> dict[str, int]:
    """Sizes of every functools cache in the project's modules and Django's URL resolver cache."""
    from django.urls.resolvers import _get_cached_resolver

    roots = (
        "tenants",
        "mcp_tools",
        "oauth",
        "declarations",
        "crm",
        "connectors",
        "observability",
        "config",
        "accounts",
    )
    sizes = {"django.urls resolver cache": _get_cached_resolver.cache_info().currsize}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in roots:
            continue
        for attr, value in vars(module).items():
            info = getattr(value, "cache_info", None)
            if callable(info) and getattr(value, "__module__", "").split(".")[0] in roots:  # not stdlib's
                sizes[f"{name}.{attr}"] = info().currsize
    return sizes


# --- migrate_schemas ---------------------------------------------------------------------------------
def migrate_all(executor: str, *, skip_current: bool) -> float:
    """Wall time of ``migrate_schemas --tenant`` (template and every tenant) in its own process."""
    command = [sys.executable, "manage.py", "migrate_schemas", "--tenant", "--executor", executor, "-v", "0"]
    env = {**os.environ, "TENANT_MIGRATE_SKIP_CURRENT": "1" if skip_current else "0"}
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def migrate_report(full: bool) -> list[str]:
    """migrate_schemas over every tenant with nothing to apply: the shortcut for current tenants and,
    with ``full``, a whole ``migrate`` per tenant (multiprocessing executor)."""
    from tenants.models import Tenant

    count = Tenant.objects.count()
    connection.close()
    # the shortcut runs the receivers of current tenants in the main process, so its executor does not matter
    runs = [("multiprocessing", True)] + ([("multiprocessing", False)] if full else [])
    processes = settings.TENANT_MULTIPROCESSING_MAX_PROCESSES
    lines = [f"\n## migrate_schemas --tenant over {count} tenants + the template, nothing to apply ({load()})\n"]
    lines += ["| executor | current tenants | wall time | per tenant |", "|---|---|---:|---:|"]
    for executor, skip in runs:
        print(f"migrate_schemas --executor={executor} skip_current={skip} ({load()})", flush=True)
        took = migrate_all(executor, skip_current=skip)
        label = f"{executor} ({processes} processes)" if executor == "multiprocessing" else executor
        how = "`pgtenancy.schema_migrations`" if skip else "whole `migrate` each"
        lines.append(f"| {label} | {how} | {took:.1f} s | {took / (count + 1) * 1000:.0f} ms |")
        print(lines[-1], flush=True)
    lines.append(f"\n({load()} at the end)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300, help="in-process calls per mode")
    parser.add_argument("--reset", action="store_true", help="drop the scale_* tenants of an earlier run first")
    parser.add_argument("--ways", type=int, default=3, help="tenants made each other way, for the ratio")
    parser.add_argument("--migrate", action="store_true", help="also time migrate_schemas over every tenant")
    parser.add_argument("--migrate-only", action="store_true", help="only time migrate_schemas (as --migrate)")
    parser.add_argument("--wrk", type=int, default=5, help="wrk seconds per round (0: no wrk)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.migrate_only:
        print("\n".join(migrate_report(full=True)))
        return
    wrk = ensure_wrk() if args.wrk else None
    if args.reset:
        reset()
    from tenants.models import Tenant

    report: list[str] = []
    acme = ("acme", *mint_token_for_acme())

    # --- before ----------------------------------------------------------------------------------
    before_count = Tenant.objects.count()
    print(f"\nbaseline with {before_count} tenants ({load()})", flush=True)
    base = interleaved({"one tenant (acme)": [acme]}, args.calls)["one tenant (acme)"]
    base_wrk = wrk_rounds(wrk, {"one": [acme]}, args.wrk, args.rounds)["one"] if wrk else None
    print(f"  acme, in-process median {base * 1000:.2f} ms; wrk {base_wrk} req/s", flush=True)
    cache_before = project_caches()
    rss_before = rss_mb()

    # --- provisioning ------------------------------------------------------------------------------
    ways = other_ways(args.ways) if args.ways else {}
    for way, values in ways.items():
        print(f"  {way}: {', '.join(f'{v * 1000:.0f}' for v in values)} ms", flush=True)
    print(f"\nprovisioning up to {args.tenants} tenants ({load()})", flush=True)
    started = time.perf_counter()
    schema_times, data_times = provision(args.tenants)
    total = time.perf_counter() - started
    slugs = scale_slugs()[: args.tenants]
    if schema_times:
        print(
            f"  schema median {statistics.median(schema_times) * 1000:.0f} ms,"
            f" p95 {pct(schema_times, 95) * 1000:.0f} ms,"
            f" first 10 {statistics.median(schema_times[:10]) * 1000:.0f} ms,"
            f" last 10 {statistics.median(schema_times[-10:]) * 1000:.0f} ms; demo data median"
            f" {statistics.median(data_times) * 1000:.0f} ms ({load()})",
            flush=True,
        )
    after_count = Tenant.objects.count()

    # --- after -------------------------------------------------------------------------------------
    print(f"\nminting a token in each of {len(slugs)} tenants", flush=True)
    spread = [(slug, *mint_token(slug)) for slug in slugs]
    print(f"latency with {after_count} tenants ({load()})", flush=True)
    gc.collect()
    # first pass: each call is this backend's first in that schema (cold catalog caches); second pass:
    # the round-robin carries on, so every schema has been seen once (warm)
    after = interleaved(
        {"one tenant (acme)": [acme], f"spread over {len(spread)} tenants": spread}, max(args.calls, len(spread))
    )
    warm = interleaved(
        {"one tenant (acme)": [acme], f"spread over {len(spread)} tenants": spread}, max(args.calls, len(spread))
    )
    after_wrk = wrk_rounds(wrk, {"one": [acme], "spread": spread}, args.wrk, args.rounds) if wrk else None
    # a fresh backend (this one also ran the provisioning DDL): acme only, then every tenant once
    connection.close()
    latency([acme], 50)
    mem_one = backend_memory_mb()
    latency(spread, len(spread))
    mem_after, cache_after, rss_after = backend_memory_mb(), project_caches(), rss_mb()

    report.append(
        f"\n## Provisioning ({len(schema_times)} tenants made in this run, {total:.0f} s with demo data; {load()})\n"
    )
    if schema_times:
        report.append("| tenant schema | median ms | p95 ms | first 10 median | last 10 median |")
        report.append("|---|---:|---:|---:|---:|")
        for label, values in (
            ("copy of the template (create_tenant)", schema_times),
            ("demo data (2 users, memberships, 3 contacts, 3 notes)", data_times),
        ):
            first, last = statistics.median(values[:10]), statistics.median(values[-10:])
            report.append(
                f"| {label} | {ms(statistics.median(values))} | {ms(pct(values, 95))} | {ms(first)} | {ms(last)} |"
            )
    if ways:
        report.append(f"\nSide by side, alternated ({args.ways} each, made before the {args.tenants}):\n")
        report.append("| way | median ms | each |")
        report.append("|---|---:|---|")
        for way, values in ways.items():
            report.append(
                f"| {way} | {ms(statistics.median(values))} | {', '.join(f'{v * 1000:.0f}' for v in values)} |"
            )

    report.append("\n## Authorized tools/call (crm_get_contact), in-process median ms\n")
    report.append(f"| tenants | one tenant (acme) | spread round-robin over {len(spread)} tenants |")
    report.append("|---:|---:|---:|")
    report.append(f"| {before_count} | {base * 1000:.2f} | — |")
    one_after, spread_after = list(after.values())
    one_warm, spread_warm = list(warm.values())
    report.append(
        f"| {after_count}, spread cold (first call per schema on this backend) | {one_after * 1000:.2f} "
        f"| {spread_after * 1000:.2f} |"
    )
    report.append(
        f"| {after_count}, spread warm (every schema seen once) | {one_warm * 1000:.2f} | {spread_warm * 1000:.2f} |"
    )
    report.append(
        f"\n{after_count} vs {before_count} tenants, one tenant: {(one_after / base - 1) * 100:+.1f} %; "
        f"side by side at {after_count}: spread cold {(spread_after / one_after - 1) * 100:+.1f} %, "
        f"spread warm {(spread_warm / one_warm - 1) * 100:+.1f} % (target: within 10 %)"
    )
    if wrk:
        report.append(f"\nwrk -t2 -c8 -d{args.wrk}s x {args.rounds} rounds (median req/s), gunicorn 2 sync workers:\n")
        report.append("| tenants | one tenant (acme) | spread over every tenant |")
        report.append("|---:|---:|---:|")
        report.append(f"| {before_count} | {base_wrk:.1f} | — |")
        report.append(f"| {after_count} | {after_wrk['one']:.1f} | {after_wrk['spread']:.1f} |")

    report.append("\n## What grows with the tenant count (this process, after calls to every tenant)\n")
    report.append("| | before | after |")
    report.append("|---|---:|---:|")
    report.append(
        f"| PostgreSQL backend memory, MB (all contexts; new backend: 50 calls to acme, then one call to each of "
        f"{len(spread)} tenants) | {mem_one[0]:.1f} | {mem_after[0]:.1f} |"
    )
    report.append(f"| of which CacheMemoryContext (relcache, catcache), MB | {mem_one[1]:.1f} | {mem_after[1]:.1f} |")
    report.append(f"| Python process RSS, MB | {rss_before:.1f} | {rss_after:.1f} |")
    for name in sorted(set(cache_before) | set(cache_after)):
        report.append(f"| `{name}` entries | {cache_before.get(name, 0)} | {cache_after.get(name, 0)} |")

    if args.migrate:
        report += migrate_report(full=True)

    print("\n".join(report))


def mint_token_for_acme() -> tuple[str, int]:
    from accounts.models import User

    if not User.objects.filter(email="member@acme.example").exists():
        raise SystemExit("bootstrap_demo did not create member@acme.example")
    return mint_token("acme")


if __name__ == "__main__":
    main()
