"""``migrate_schemas`` over many tenant schemas: record what is a no-op there, migrate only the rest.

A migration of an app in ``SHARED_APPS`` but not ``TENANT_APPS`` (a *shared-only* migration) does
nothing in a tenant schema: django-tenants' router refuses every operation of that app there, and
``migrate`` only writes its ``django_migrations`` row. So instead of a whole ``migrate`` per schema
(loading the graph and rendering the model state, half a second of CPU each, for one row), each
schema gets its missing shared-only migrations in one ``INSERT`` (``record_shared_only``), provided
that every dependency of each is recorded there already or in the same statement (Django's
consistency check would refuse the schema otherwise) and that its operations are Django's own
(which ask the router); any other one is left to ``migrate``.

What is left (tenant migrations) runs per schema without ``migrate``: the schemas are grouped by
what they lack, and per group, per process, the migration graph is loaded and the state before the
plan rendered once (``_Plan``); each schema then applies the plan on a clone of that state with
Django's own ``MigrationExecutor.apply_migration`` (one transaction per atomic migration, recorded
as ``migrate`` records it). ``--executor=multiprocessing`` spreads the schemas over
``TENANT_MULTIPROCESSING_MAX_PROCESSES`` forked workers. A schema with nothing to apply is not
migrated at all.

The post_migrate receivers run once per schema (one ``post_migrate`` emission), and only where
something changed: in a schema that had migrations applied, and in a schema that lacks one of the
rows they write that the template (migrated first, receivers included) has: content types,
permissions and the scope matrix (``RECEIVER_ROWS``; ``tests/test_schema_migrations.py`` pins the
list of receivers, so a new one has to be considered here), so a deploy that adds a tool without a
migration still gets its row everywhere. Without a template (``TENANT_PROVISION_BY_COPY = False``)
they run in every schema, as before.

A schema that fails is reported with its error (the migration that failed rolled back, the ones
before it kept, as ``migrate`` does) and the others carry on; the run ends with a ``CommandError``
naming the failed schemas.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field

from django.apps import apps as global_apps
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor as DjangoExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django_tenants.routers import TenantSyncRouter
from django_tenants.signals import schema_migrated, schema_pre_migration

Key = tuple[str, str]

# operations that ask the router before touching the database (Django's own)
_ROUTED_MODULES = ("django.db.migrations.operations.", "django.contrib.postgres.operations")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- what each migration is --------------------------------------------------------------------------
@dataclass(frozen=True)
class DiskGraph:
    """Every migration on disk, the shared-only ones that may be recorded without running, and each
    one's dependencies."""

    expected: frozenset[Key]
    recordable: frozenset[Key]
    parents: dict[Key, frozenset[Key]]


def disk_graph() -> DiskGraph:
    loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
    router = TenantSyncRouter()
    recordable = set()
    for key, migration in loader.disk_migrations.items():
        if router.app_in_list(key[0], settings.TENANT_APPS):
            continue
        if all(type(op).__module__.startswith(_ROUTED_MODULES) for op in migration.operations):
            recordable.add(key)
    parents = {key: frozenset(p.key for p in loader.graph.node_map[key].parents) for key in loader.disk_migrations}
    return DiskGraph(frozenset(loader.disk_migrations), frozenset(recordable), parents)


def to_record(graph: DiskGraph, applied: set[Key]) -> set[Key]:
    """The missing shared-only migrations whose dependencies are all recorded (or recorded with them)."""
    candidates = (graph.expected - applied) & graph.recordable
    chosen: set[Key] = set()
    progress = True
    while progress:
        progress = False
        for key in candidates - chosen:
            if graph.parents[key] <= applied | chosen:
                chosen.add(key)
                progress = True
    return chosen


def applied_in(schema: str) -> set[Key]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {_q(schema)}.django_migrations")  # noqa: S608
        return set(cursor.fetchall())


def record_shared_only(schema: str, keys: set[Key]) -> None:
    """One statement: the rows ``migrate`` would have written for these no-op migrations."""
    ordered = sorted(keys)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_q(schema)}.django_migrations (app, name, applied) "  # noqa: S608
            "SELECT m.app, m.name, now() FROM unnest(%s::text[], %s::text[]) AS m(app, name) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {_q(schema)}.django_migrations d "
            "WHERE d.app = m.app AND d.name = m.name)",
            [[app for app, _ in ordered], [name for _, name in ordered]],
        )


# --- the post_migrate receivers' rows ----------------------------------------------------------------
# the natural keys of the rows the post_migrate receivers write in a tenant schema ({s}: the schema)
RECEIVER_ROWS = (
    "SELECT app_label, model FROM {s}.django_content_type",  # contenttypes.create_contenttypes
    "SELECT c.app_label, c.model, p.codename FROM {s}.auth_permission p "  # auth.create_permissions
    "JOIN {s}.django_content_type c ON c.id = p.content_type_id",
    "SELECT tool_name FROM {s}.mcp_tools_toolpolicy",  # mcp_tools.receivers.ensure_policies_after_migrate
)


def receivers_needed(schema: str, template: str | None) -> bool:
    """Whether the schema lacks a receiver row the template has (always, without a template)."""
    if template is None or schema == template:
        return True
    checks = " OR ".join(
        f"EXISTS ({rows.format(s=_q(template))} EXCEPT {rows.format(s=_q(schema))})" for rows in RECEIVER_ROWS
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {checks}")
        return bool(cursor.fetchone()[0])


def run_receivers(verbosity: int, interactive: bool, plan: list | None = None) -> None:
    emit_post_migrate_signal(verbosity, interactive, connection.alias, apps=global_apps, plan=plan or [])


# --- the plan of a group of schemas ------------------------------------------------------------------
@dataclass
class _Plan:
    """What a group of schemas lacking the same migrations applies, with the state before it rendered
    once (per process)."""

    executor: DjangoExecutor
    plan: list
    state: ProjectState


_plans: dict[frozenset[Key], _Plan] = {}


def _plan_for(remaining: frozenset[Key], verbosity: int, interactive: bool) -> _Plan:
    """Built in the first schema of its group (``connection`` set to it)."""
    cached = _plans.get(remaining)
    if cached is not None:
        return cached
    executor = DjangoExecutor(connection)
    executor.loader.check_consistent_history(connection)
    conflicts = executor.loader.detect_conflicts()
    if conflicts:
        raise CommandError(f"conflicting migrations: {conflicts}; run makemigrations --merge")
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    planned = {(migration.app_label, migration.name) for migration, _ in plan}
    if any(backwards for _, backwards in plan) or not planned <= remaining:
        raise CommandError(f"unexpected plan {sorted(planned)} for missing {sorted(remaining)}")
    # Django's own start state (MigrationExecutor.migrate does the same): the applied migrations' state
    state = executor._create_project_state(with_applied_migrations=True)
    state.apps  # noqa: B018  (render once: each schema works on a clone)
    emit_pre_migrate_signal(verbosity, interactive, connection.alias, apps=state.apps, plan=plan)
    _plans[remaining] = _Plan(executor, plan, state)
    return _plans[remaining]


# --- one schema --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    schema: str
    remaining: frozenset[Key]  # migrations to apply (empty: post_migrate receivers only)


@dataclass(frozen=True)
class Result:
    schema: str
    applied: tuple[str, ...] = ()
    receivers: bool = False
    error: str | None = None


def migrate_one(work: Work, template: str | None, verbosity: int, interactive: bool) -> Result:
    applied: list[str] = []
    if work.remaining:  # django-tenants' per-schema signals, for schemas that are migrated
        schema_pre_migration.send(migrate_one, schema_name=work.schema)
    try:
        connection.set_schema(work.schema)
        plan = None
        if work.remaining:
            group = _plan_for(work.remaining, verbosity, interactive)
            plan = group.plan
            state = group.state.clone()
            for migration, _ in group.plan:
                state = group.executor.apply_migration(state, migration)
                applied.append(f"{migration.app_label}.{migration.name}")
            group.executor.check_replacements()
        receivers = bool(applied) or receivers_needed(work.schema, template)
        if receivers:
            run_receivers(verbosity, interactive, plan)
    except Exception as exc:  # reported with the schema; the other schemas carry on
        return Result(work.schema, tuple(applied), error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.set_schema_to_public()
    if work.remaining:
        schema_migrated.send(migrate_one, schema_name=work.schema)
    return Result(work.schema, tuple(applied), receivers)


def _worker(args: tuple[Work, str | None, int, bool]) -> Result:
    return migrate_one(*args)


# --- the run -----------------------------------------------------------------------------------------
@dataclass
class Report:
    recorded: dict[str, int] = field(default_factory=dict)  # schema -> shared-only rows recorded
    results: list[Result] = field(default_factory=list)
    untouched: int = 0

    @property
    def failures(self) -> list[Result]:
        return [result for result in self.results if result.error]


def prepare(names: list[str], template: str | None, report: Report) -> list[Work]:
    """Record the shared-only migrations of every schema; return the schemas with something left."""
    graph = disk_graph()
    work = []
    for schema in names:
        try:
            with transaction.atomic():
                applied = applied_in(schema)
                recorded = to_record(graph, applied)
                if recorded:
                    record_shared_only(schema, recorded)
                    report.recorded[schema] = len(recorded)
                remaining = frozenset(graph.expected - applied - recorded)
                if remaining or receivers_needed(schema, template):
                    work.append(Work(schema, remaining))
                else:
                    report.untouched += 1
        except DatabaseError as exc:
            report.results.append(Result(schema, error=f"{type(exc).__name__}: {exc}"))
    # a group's schemas together, so each worker's chunks mostly share one rendered plan
    return sorted(work, key=lambda item: (sorted(item.remaining), item.schema))


def run(work: list[Work], template: str | None, options: dict, codename: str, report: Report) -> None:
    verbosity = int(options.get("verbosity", 1))
    interactive = bool(options.get("interactive", False))
    jobs = [(item, template, verbosity, interactive) for item in work]
    _plans.clear()  # plans are per run: the migrations on disk may have changed since the last one
    if codename == "multiprocessing" and len(jobs) > 1:
        from django_tenants.migration_executors.multiproc import get_pool

        connection.close()
        pool = get_pool()
        try:
            chunk = max(1, min(16, len(jobs) // (4 * getattr(settings, "TENANT_MULTIPROCESSING_MAX_PROCESSES", 2))))
            for result in pool.imap_unordered(_worker, jobs, chunksize=chunk):
                _progress(result, verbosity)
                report.results.append(result)
        finally:
            pool.close()
            pool.join()
    else:
        for job in jobs:
            result = migrate_one(*job)
            _progress(result, verbosity)
            report.results.append(result)
        _plans.clear()


def _progress(result: Result, verbosity: int) -> None:
    if result.error:
        sys.stderr.write(f"[{result.schema}] FAILED after {list(result.applied)}: {result.error}\n")
    elif verbosity >= 2 or (verbosity >= 1 and result.applied):
        receivers = ", post_migrate receivers" if result.receivers else ""
        sys.stdout.write(f"[{result.schema}] applied {', '.join(result.applied) or 'nothing'}{receivers}\n")


def summary(report: Report, total: int) -> str:
    migrated = sum(1 for result in report.results if result.applied and not result.error)
    receivers = sum(1 for result in report.results if result.receivers and not result.error)
    rows = sum(report.recorded.values())
    return (
        f"{total} tenant schemas: shared-only migrations recorded in {len(report.recorded)} ({rows} rows), "
        f"tenant migrations applied in {migrated}, post_migrate receivers run in {receivers}, "
        f"{report.untouched} untouched, {len(report.failures)} failed"
    )


def migrate_tenant_schemas(names: list[str], template: str | None, options: dict, codename: str) -> Report:
    report = Report()
    work = prepare(names, template, report)
    run(work, template, options, codename, report)
    if int(options.get("verbosity", 1)) >= 1:
        print(summary(report, len(names)))
    return report


def raise_for_failures(report: Report) -> None:
    failures = report.failures
    if failures:
        by_error: dict[str, list[str]] = defaultdict(list)
        for result in failures:
            by_error[result.error or ""].append(result.schema)
        lines = [f"  {', '.join(sorted(schemas))}: {error}" for error, schemas in by_error.items()]
        raise CommandError(f"{len(failures)} tenant schema(s) failed to migrate:\n" + "\n".join(lines))
