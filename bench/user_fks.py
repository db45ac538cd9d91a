"""What foreign keys from tenant schemas to ``public.accounts_user`` cost (tenants.user_references):
the first ``UPDATE`` of a user on a fresh backend (a password change, a deactivation; every login
wrote ``last_login`` until it moved to ``accounts_userlogin``) and the direct copy of the template
(``create_tenant`` with no spare schema), with the database as it is now.

    .venv/bin/python -m bench user-fks [--checkout DIR] [--db URL] [--samples 15] [--copies 5]

Run it on a database before and after the migrations that drop the constraints (``--checkout`` main's
code for "before", this checkout for "after"); with 2 and with 1,000 tenants (``bench/tenants_scale.py``
provisions them). Each sample of the first ``UPDATE`` opens a new connection (a new PostgreSQL
backend: nothing of ``accounts_user`` in its caches), runs ``SELECT 1``, then times
``UPDATE public.accounts_user SET password = password WHERE id = …`` (a column both main's and
this schema have; the value is left as it was) in a transaction rolled back after it
(the commit's WAL flush does not depend on the tenant count and is noise on a shared disk),
then a second one; the same first ``UPDATE`` autocommitted, and a read-then-write pair (``SELECT``
of the user, then the ``UPDATE``, as a password change does), are timed on other new backends. Each copy is one
``create_tenant`` in the checkout's code after an untimed warm-up copy (the first copy of a process
reads the template's catalog), the tenant dropped again untimed.

``--apply`` (this checkout's code) then does on a database made by main's code what this change's
migrations do, without ``migrate_schemas`` over every tenant (item 2's subject; minutes at 1,000
tenants): the template is migrated for real (new tenants copy it), and in every tenant schema the
foreign keys to ``public.accounts_user`` are dropped in one statement per schema and the migrations
recorded, as ``migrate`` would leave it; spare schemas (copies of the old template) are dropped.

Run on demand; never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.common import ROOT, bench_parser, child, load, median_ms, setup_django, table

PREFIX = "bench_fk_"
FKS = """
    SELECT count(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
     WHERE c.contype = 'f' AND c.confrelid = 'public.accounts_user'::regclass
       AND r.relnamespace <> 'public'::regnamespace
"""


def worker(samples: int, copies: int) -> None:
    """In the checkout's code (``child``): the figures, as one JSON line."""
    setup_django(migrate=False)
    from django.conf import settings
    from django.db import connection

    import tenants
    from tenants.models import Tenant
    from tenants.services import create_tenant

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM public.accounts_user")
        (user_id,) = cursor.fetchone()
        cursor.execute(FKS)
        (fks,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.accounts_user'::regclass")
        (triggers,) = cursor.fetchone()
    update = "UPDATE public.accounts_user SET password = password WHERE id = %s"

    def timed(cursor, sql: str, *, commit: bool = False) -> float:
        """One statement, in a transaction rolled back after it (no WAL flush: the commit's cost does not
        depend on the tenant count, and on a shared disk it is noise), or autocommitted."""
        if not commit:
            cursor.execute("BEGIN")
        started = time.perf_counter()
        cursor.execute(sql, [user_id])
        took = time.perf_counter() - started
        if not commit:
            cursor.execute("ROLLBACK")
        return took

    first, second, first_commit, select_first, update_after_select = [], [], [], [], []
    for _ in range(samples):
        for commit in (False, True):
            connection.close()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # the connection and django-tenants' search path, untimed
                (first_commit if commit else first).append(timed(cursor, update, commit=commit))
                if not commit:
                    second.append(timed(cursor, update))
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            select_first.append(timed(cursor, "SELECT * FROM public.accounts_user WHERE id = %s"))
            update_after_select.append(timed(cursor, update))
    connection.close()

    settings.TENANT_SPARE_SCHEMAS = 0
    copy_times = []
    for i in range(copies + 1):
        slug = f"{PREFIX}{os.getpid()}_{i}"
        started = time.perf_counter()
        create_tenant(slug=slug, name=slug)
        if i:  # the first one (catalog read of the template) is the warm-up
            copy_times.append(time.perf_counter() - started)
        connection.set_schema_to_public()
        Tenant.objects.get(schema_name=slug).delete(force_drop=True)
    result = {
        "code": str(Path(tenants.__file__).parent.parent),
        "tenants": Tenant.objects.exclude(schema_name="public").count(),
        "fks": fks,
        "triggers": triggers,
        "first_update": first,
        "second_update": second,
        "first_update_commit": first_commit,
        "select_first": select_first,
        "update_after_select": update_after_select,
        "copy": copy_times,
    }
    print(json.dumps(result))


def apply() -> None:
    """This checkout's migrations on the template, their effect on every tenant schema (docstring)."""
    setup_django(migrate=False)
    from django.conf import settings
    from django.core.management.commands.migrate import Command
    from django.db import connection
    from django_tenants.migration_executors.base import run_migrations

    from tenants.models import Tenant

    options = vars(Command().create_parser("manage.py", "migrate").parse_args([]))
    options.update(verbosity=0, skip_checks=True)
    started = time.perf_counter()
    run_migrations([], options, "standard", settings.TENANT_TEMPLATE_SCHEMA)
    print(f"template migrated in {time.perf_counter() - started:.1f} s", flush=True)
    new = [
        ("connectors", "0011_user_without_db_constraint"),
        ("mcp_tools", "0004_user_without_db_constraint"),
        ("platform_oauth", "0007_user_without_db_constraint"),
        ("platform_oauth", "0008_drop_third_party_user_foreign_keys"),
    ]
    schemas = list(Tenant.objects.exclude(schema_name="public").values_list("schema_name", flat=True))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(
                "SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.conrelid::regclass, c.conname) "
                "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
                "WHERE c.contype = 'f' AND c.confrelid = 'public.accounts_user'::regclass "
                "AND r.relnamespace = %s::regnamespace",
                [schema],
            )
            drops = [row[0] for row in cursor.fetchall()]
            records = [
                f"INSERT INTO \"{schema}\".django_migrations (app, name, applied) VALUES ('{app}', '{name}', now())"
                for app, name in new
            ]
            cursor.execute("; ".join(["BEGIN", *drops, *records, "COMMIT"]))
    print(f"{len(schemas)} tenant schemas done in {time.perf_counter() - started:.1f} s", flush=True)
    from pgtenancy.spares import drop_spares

    drop_spares()  # copies of the template as it was: migrate_schemas would drop them too (and copy new ones)


def ms(values: list[float]) -> str:
    return f"{median_ms(values):.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--apply", action="store_true", help="this change's migrations, their effect by SQL (above)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="whose code runs (default: this checkout)")
    parser.add_argument("--db", help="database URL (default: DATABASE_URL, else this checkout's embedded one)")
    parser.add_argument("--samples", type=int, default=15, help="new backends per first-UPDATE figure")
    parser.add_argument("--copies", type=int, default=5, help="timed create_tenant calls")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.samples, args.copies)
    if args.apply:
        return apply()
    db = args.db or os.environ.get("DATABASE_URL")
    if not db:
        from config.embedded_db import embedded_database_url

        db = embedded_database_url()
    # the checkout's secrets are this one's (PLATFORM_VAR_DIR), so a copy of main reads the same dev.env
    env = {"DATABASE_URL": db, "PLATFORM_VAR_DIR": os.environ.get("PLATFORM_VAR_DIR", str(ROOT / "var"))}
    before = load()
    options = ("--samples", str(args.samples), "--copies", str(args.copies))
    got = child("user-fks", "--worker", *options, code=args.checkout, env=env)
    print(f"code {got['code']}, {before} -> {load()}\n")
    header = ["tenants", "FKs from tenant schemas to accounts_user", "triggers on accounts_user"]
    header += ["first UPDATE, new backend (median / max ms)", "second UPDATE", "first UPDATE, autocommit"]
    header += ["first SELECT of the user", "UPDATE after it", "direct copy (median ms; each)"]
    row = [f"{got['tenants']:,}", f"{got['fks']:,}", f"{got['triggers']:,}"]
    row += [f"{ms(got['first_update'])} / {max(got['first_update']) * 1000:.1f}", ms(got["second_update"])]
    row += [ms(got["first_update_commit"]), ms(got["select_first"]), ms(got["update_after_select"])]
    row += [f"{ms(got['copy'])}; {', '.join(f'{v * 1000:.0f}' for v in got['copy'])}"]
    print(table(header, [row], "rrrrrrrrl"))
    return None
