"""``migrate_schemas`` over every tenant (a deploy), this checkout against an earlier one, side by side.

    .venv/bin/python -m bench migrate-scale [--before-ref main] [--before DIR] [--sides after,before] [--limit S]

The tenants are the ones in the database (``bench/tenants_scale.py`` makes ``scale_*`` tenants; 1,000
take a while). Two deploys are timed, each first with the earlier code ("before", a ``git archive`` of
``--before-ref`` unless ``--before`` names a checkout) and then with this checkout's ("after"), each
with a migration of its own, written for the run into a migrations package that extends the app's
(``MIGRATION_MODULES``, through a settings module in a temporary directory):

1. a shared-only migration: a nullable column on ``jobs.JobRun`` (``jobs`` is in ``SHARED_APPS`` only);
2. a tenant migration: a nullable column on ``crm.Contact`` in every tenant schema.

Each run is ``manage.py migrate_schemas --executor <executor> -v 0`` in its own process (public,
template, tenants, spares), both checkouts on this checkout's embedded PostgreSQL and dev secrets.
Each run is checked: every tenant schema records the migration, and the column exists where it
should. The benchmark's columns and ``django_migrations`` rows are removed at the start and at the end
(plain SQL in every schema). Run on demand; never part of the tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, bench_parser, load, setup_django
from config.dev_secrets import VAR_DIR

MARK = "bench_deploy"  # in every migration name and column the benchmark adds

SETTINGS = """
import json, os
from config.settings import *  # noqa: F403

MIGRATION_MODULES = json.loads(os.environ["BENCH_MIGRATION_MODULES"])
"""

MIGRATION = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [({app!r}, {parent!r})]
    operations = [migrations.AddField({model!r}, {field!r}, models.TextField(null=True))]
"""


def schemas() -> list[str]:
    from tenants.models import Tenant

    return list(Tenant.objects.exclude(schema_name="public").values_list("schema_name", flat=True))


def all_schemas_with(table: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = %s", [table])
        return [row[0] for row in cursor.fetchall()]


def clean() -> None:
    """Drop the benchmark's columns and migration rows everywhere (one transaction per schema)."""
    from django.db import connection

    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for schema in all_schemas_with("django_migrations"):
            cursor.execute(f"DELETE FROM \"{schema}\".django_migrations WHERE name LIKE '%%{MARK}%%'")
        for table in ("crm_contact", "jobs_jobrun"):
            cursor.execute(
                "SELECT table_schema, column_name FROM information_schema.columns WHERE table_name = %s "
                "AND column_name LIKE %s",
                [table, f"{MARK}%"],
            )
            for schema, column in cursor.fetchall():
                cursor.execute(f'ALTER TABLE "{schema}"."{table}" DROP COLUMN "{column}"')


class Migrations:
    """Packages ``bench_<app>_migrations`` (the app's own migrations plus the benchmark's) in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: dict[str, str] = {}
        self.leaves: dict[str, str] = {}

    def add(self, app_label: str, model: str, field: str) -> str:
        from django.apps import apps
        from django.db.migrations.loader import MigrationLoader

        package = self.root / f"bench_{app_label}_migrations"
        if app_label not in self.modules:
            package.mkdir()
            own = Path(apps.get_app_config(app_label).path) / "migrations"
            (package / "__init__.py").write_text(f"__path__.append({str(own)!r})\n")
            self.modules[app_label] = package.name
            loader = MigrationLoader(None, ignore_no_migrations=True)
            self.leaves[app_label] = loader.graph.leaf_nodes(app_label)[0][1]
        name = f"9{len(list(package.glob('9*.py'))):03d}_{field}"
        (package / f"{name}.py").write_text(
            MIGRATION.format(app=app_label, parent=self.leaves[app_label], model=model, field=field)
        )
        self.leaves[app_label] = name
        return name


def migrate(checkout: Path, root: Path, modules: dict[str, str], executor: str, limit: float | None) -> float | None:
    """Wall time of the run; None when it was stopped at ``limit`` seconds."""
    from django.db import connection

    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DJANGO_SETTINGS_MODULE": "bench_deploy_settings",
        "BENCH_MIGRATION_MODULES": json.dumps(modules),
        "PLATFORM_VAR_DIR": str(VAR_DIR),  # this checkout's secrets for both
    }
    command = [sys.executable, "manage.py", "migrate_schemas", "--executor", executor, "-v", "0"]
    connection.close()
    started = time.perf_counter()
    with open(root / "stderr.log", "a") as stderr:  # a whole migrate per schema repeats the system checks
        process = subprocess.Popen(
            command, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        try:
            code = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the command and its workers
            process.wait()
            return None
    if code:
        raise SystemExit(f"migrate_schemas exited with {code}; see {root / 'stderr.log'}")
    return time.perf_counter() - started


def recorded_count(app: str, name: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        count = 0
        for schema in schemas():
            cursor.execute(
                f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s AND name = %s', [app, name]
            )
            count += cursor.fetchone()[0]
    return count


def check(app: str, name: str, table: str | None, column: str) -> str:
    """Every tenant schema (and the template) records the migration; the column is where it should be."""
    from django.conf import settings
    from django.db import connection

    names = [*schemas(), settings.TENANT_TEMPLATE_SCHEMA]
    missing = []
    with connection.cursor() as cursor:
        for schema in names:
            cursor.execute(
                f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
                [app, name],
            )
            if cursor.fetchone()[0] != 1:
                missing.append(schema)
        in_schemas = []
        if table:
            cursor.execute(
                "SELECT table_schema FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                [table, column],
            )
            in_schemas = [row[0] for row in cursor.fetchall()]
    if missing:
        raise SystemExit(f"{app}.{name} not recorded in {len(missing)} schemas, e.g. {missing[:5]}")
    where = "public" if app == "jobs" else "tenant"
    expected = {"public"} if app == "jobs" else set(names)
    if not expected <= set(in_schemas):
        raise SystemExit(f"column {column} missing in {sorted(expected - set(in_schemas))[:5]}")
    return f"recorded in {len(names)} schemas, column in {len(in_schemas)} ({where})"


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--before-ref", default="main", help="git ref of the earlier code (git archive)")
    parser.add_argument("--before", type=Path, help="a checkout of the earlier code (instead of --before-ref)")
    parser.add_argument("--executor", default="multiprocessing")
    parser.add_argument("--only", choices=("shared", "tenant"), help="one of the two deploys")
    parser.add_argument("--sides", default="after,before", help="which code, in order (after: this checkout)")
    parser.add_argument(
        "--limit", type=float, help="stop a run after this many seconds and extrapolate from the schemas it recorded"
    )
    args = parser.parse_args(argv)
    setup_django(migrate=False)
    count = len(schemas())
    clean()
    with tempfile.TemporaryDirectory(prefix="bench_deploy_") as tmp:
        root = Path(tmp)
        print(f"migrate_schemas output: {root / 'stderr.log'}", flush=True)
        before = args.before
        if before is None:
            before = root / "before"
            before.mkdir()
            archive = subprocess.run(["git", "archive", args.before_ref], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        (root / "bench_deploy_settings.py").write_text(SETTINGS)
        migrations = Migrations(root)
        deploys = [
            ("shared", "one shared-only migration (nullable column on jobs.JobRun)", "jobs", "jobrun", "jobs_jobrun"),
            ("tenant", "one tenant migration (nullable column on crm.Contact)", "crm", "contact", "crm_contact"),
        ]
        lines = [
            f"\n## migrate_schemas --executor={args.executor} over {count} tenants + the template ({load()})\n",
            "| deploy | before | after |",
            "|---|---:|---:|",
        ]
        try:
            for key, label, app, model, table in deploys:
                if args.only and key != args.only:
                    continue
                took = {"before": "—", "after": "—"}
                for side in args.sides.split(","):
                    checkout = ROOT if side == "after" else before
                    field = f"{MARK}_{key}_{side}"
                    name = migrations.add(app, model, field)
                    print(f"{label}, {side} ({load()})", flush=True)
                    seconds = migrate(checkout, root, migrations.modules, args.executor, args.limit)
                    if seconds is None:
                        done = recorded_count(app, name)
                        took[side] = (
                            f"stopped at {args.limit:.0f} s with {done} of {count} tenant schemas migrated "
                            f"(≈ {args.limit * count / max(done, 1):.0f} s for all)"
                        )
                        print(f"  {took[side]} ({load()})", flush=True)
                        continue
                    took[side] = f"{seconds:.1f} s"
                    print(f"  {seconds:.1f} s; {check(app, name, table, field)} ({load()})", flush=True)
                lines.append(f"| {label} | {took['before']} | **{took['after']}** |")
        finally:
            clean()
    lines.append(f"\n({load()} at the end)")
    print("\n".join(lines))
