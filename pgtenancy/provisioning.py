"""New tenant schemas by copying a migrated template schema instead of replaying every migration.

The template (``settings.TENANT_TEMPLATE_SCHEMA``, ``_tenant_template``: a leading underscore is never
a valid slug, so no tenant and no URL can reach it) is created and migrated by ``migrate_schemas``
before the tenants (``pgtenancy.migration.get_executor``), post_migrate receivers included, so it holds
exactly what a freshly migrated tenant holds: tables, indexes, constraints, identity sequences, and the
rows written by migrations and post_migrate (``django_migrations``, content types, permissions, the
scope matrix's ``ToolPolicy`` defaults).

Why not django-tenants' own ``TENANT_BASE_SCHEMA`` clone (``django_tenants.clone.CloneSchema``)? On
this schema its clone alone, before its ``migrate_schemas --fake``, took 1.6-3 times as long as this
copy (``bench/tenants_scale.py``, docs/benchmarks.md); it recreates a 4,600-line PL/pgSQL function
and runs ``DROP TYPE public.cloneparms CASCADE`` on every call (two tenants created at once race on
them, and it leaves its types and functions in the public schema); and the ``--fake`` that follows
marks as applied any migration the template lacks, so a stale template silently gives a tenant
missing tables. Here the DDL is read from the template's catalog with
PostgreSQL's own ``pg_get_constraintdef``/``pg_get_indexdef``/``format_type`` (four queries), replayed
in the new schema in one round trip, and the rows copied with ``INSERT ... SELECT``; a template that
lags the code (a migration on disk it has not applied) is caught and the missing migrations are run
for real on the new schema.

Concurrency: a copy holds a shared advisory lock on the template for its transaction, the template's
migration an exclusive one (``template_lock``), so a copy never sees a half-migrated template; copies
share the lock and create nothing outside their own schema, so any number run at once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader

log = logging.getLogger(__name__)

# one 64-bit advisory-lock key for the template, derived from a fixed text (stable across processes and
# releases: the text names the module this lived in first)
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"tenants.provisioning.template").digest()[:8], "big", signed=True)


def template_schema() -> str | None:
    """The template's schema name, or None when provisioning by copy is switched off."""
    if not getattr(settings, "TENANT_PROVISION_BY_COPY", True):
        return None
    return getattr(settings, "TENANT_TEMPLATE_SCHEMA", None) or None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def template_lock() -> Iterator[None]:
    """Hold the exclusive template lock on a connection of its own (the migration executor closes the
    default connection between schemas, which would drop a session lock held there)."""
    raw = connection.get_new_connection(connection.get_connection_params())
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        yield
    finally:
        raw.close()  # releases the lock


@cache
def expected_migrations() -> frozenset[tuple[str, str]]:
    """Every migration on disk, as a migrated tenant schema records them (all apps: django-tenants
    records the shared apps' migrations in tenant schemas too, as no-ops). A squashed migration and
    the ones it replaces are all recorded once applied, so every file on disk counts."""
    loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
    return frozenset(loader.disk_migrations)


def missing_migrations(schema: str) -> set[tuple[str, str]]:
    """Migrations on disk that ``schema`` has not recorded (a template that lags the code)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {_q(schema)}.django_migrations")  # noqa: S608
        applied = set(cursor.fetchall())
    return set(expected_migrations()) - applied


_TABLES = """
SELECT c.oid, c.relname, c.relkind FROM pg_class c
WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
       CASE WHEN a.attidentity <> '' THEN pg_get_serial_sequence(format('%%I.%%I', %s, c.relname), a.attname) END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
# constraints in an order that replays: primary keys and uniques before the foreign keys that need them
_CONSTRAINTS = """
SELECT c.relname, k.conname, pg_get_constraintdef(k.oid), k.contype FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
WHERE k.connamespace = %s::regnamespace AND k.contype IN ('p', 'u', 'c', 'x', 'f')
ORDER BY k.contype = 'f', c.relname, k.conname
"""
# indexes made by a constraint (primary key, unique, exclusion) are left out: the constraint makes them.
# They are found through pg_depend's index (the constraint's internal dependency), not by scanning
# pg_constraint.conindid, which has no index: that scan ran once per index and grew with every tenant
# (0.1 s with a few tenants, seconds with 1,000).
# pg_get_indexdef qualifies the table whatever the search_path: the one " ON <schema>.<table> USING "
# it writes becomes " ON <table> USING " (checked below, so an unexpected form is refused, not replayed)
_INDEXES = """
SELECT replace(pg_get_indexdef(i.indexrelid),
               ' ON ' || quote_ident(%s) || '.' || quote_ident(t.relname) || ' USING ',
               ' ON ' || quote_ident(t.relname) || ' USING ')
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
WHERE c.relnamespace = %s::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                  AND d.refclassid = 'pg_constraint'::regclass AND d.deptype = 'i')
ORDER BY c.relname
"""
_SEQUENCES = """
SELECT s.sequencename, s.start_value, s.min_value, s.max_value, s.increment_by, s.cycle, s.cache_size
FROM pg_sequences s WHERE s.schemaname = %s
"""
_OTHER_OBJECTS = """
SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = %s::regnamespace)
     + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = %s::regnamespace AND t.typrelid = 0
        AND t.typelem = 0)
"""


class TemplateUnsupported(Exception):
    """The template holds objects this copy does not reproduce (views, triggers, functions, types):
    the caller falls back to running the migrations."""


@dataclass(frozen=True)
class _Plan:
    script: str  # the statements that make the search_path schema a copy of the template
    fingerprint_sql: str  # one query: a digest of the template's rows and sequence positions


def _copy_plan(template: str) -> _Plan:
    """The statements that make the current ``search_path`` schema a copy of ``template``, read from
    the catalog. Definitions come back unqualified because ``search_path`` is the template alone and
    are replayed with ``search_path`` set to the new schema alone; references to other schemas
    (foreign keys to ``public`` tables) stay qualified. Rows and sequence positions are read from the
    template when the script runs, so the script only changes when the template's DDL does."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL search_path = {_q(template)}")
        cursor.execute(_OTHER_OBJECTS, [template] * 3)
        if cursor.fetchone()[0]:
            raise TemplateUnsupported(f"{template} holds triggers, functions or types")
        cursor.execute(_TABLES, [template])
        tables = cursor.fetchall()
        if any(kind != "r" for _, _, kind in tables):
            raise TemplateUnsupported(f"{template} holds views, partitioned or foreign tables")
        cursor.execute(_COLUMNS, [template, template])
        columns = cursor.fetchall()
        cursor.execute(_CONSTRAINTS, [template])
        constraints = cursor.fetchall()
        cursor.execute(_INDEXES, [template, template])
        indexes = [row[0] for row in cursor.fetchall()]
        if any(f" {_q(template)}." in ddl or f" {template}." in ddl for ddl in indexes):
            raise TemplateUnsupported(f"an index definition in {template} names its schema")
        cursor.execute(_SEQUENCES, [template])
        sequences = {row[0]: row[1:] for row in cursor.fetchall()}
    connection.set_schema_to_public()  # SET LOCAL moved search_path: make the wrapper set it again

    names = {oid: name for oid, name, _ in tables}
    by_table: dict[str, list[str]] = {name: [] for name in names.values()}
    copied: dict[str, list[str]] = {name: [] for name in names.values()}
    owned: set[str] = set()
    for relid, col, coltype, notnull, default, identity, generated, collation, serial in columns:
        spec = f"{_q(col)} {coltype}"
        if collation:
            spec += f" COLLATE {_q(collation)}"
        if generated == "s":
            spec += f" GENERATED ALWAYS AS ({default}) STORED"
        elif identity:
            seq = serial.rsplit(".", 1)[-1].strip('"')
            owned.add(seq)
            start, minv, maxv, inc, cycle, cache_size = sequences[seq]
            spec += (
                f" GENERATED {'ALWAYS' if identity == 'a' else 'BY DEFAULT'} AS IDENTITY (SEQUENCE NAME {_q(seq)}"
                f" START WITH {start} INCREMENT BY {inc} MINVALUE {minv} MAXVALUE {maxv} CACHE {cache_size}"
                f"{' CYCLE' if cycle else ''})"
            )
        elif default is not None:
            spec += f" DEFAULT {default}"
        if notnull:
            spec += " NOT NULL"
        by_table[names[relid]].append(spec)
        if generated != "s":
            copied[names[relid]].append(_q(col))
    for name in sequences:  # a sequence no identity column owns (none in Django's own DDL)
        if name not in owned:
            raise TemplateUnsupported(f"sequence {name} is not an identity sequence")

    # keys, uniques and checks inside CREATE TABLE (one catalog pass per table, not one ALTER each);
    # foreign keys afterwards, one ALTER TABLE per table, since they may point at any table
    foreign: dict[str, list[str]] = {}
    for table, name, definition, kind in constraints:
        clause = f"CONSTRAINT {_q(name)} {definition}"
        (foreign.setdefault(table, []) if kind == "f" else by_table[table]).append(clause)
    statements = [f"CREATE TABLE {_q(table)} ({', '.join(specs)})" for table, specs in by_table.items()]
    statements += [f"ALTER TABLE {_q(table)} " + ", ".join(f"ADD {c}" for c in fks) for table, fks in foreign.items()]
    statements += indexes
    for table, cols in copied.items():
        col_list = ", ".join(cols)
        statements.append(
            f"INSERT INTO {_q(table)} ({col_list}) OVERRIDING SYSTEM VALUE "  # noqa: S608
            f"SELECT {col_list} FROM {_q(template)}.{_q(table)}"
        )
    statements += [
        f"SELECT setval({_literal(_q(name))}, last_value, is_called) FROM {_q(template)}.{_q(name)}"  # noqa: S608
        for name in sequences
    ]
    # what the copy takes from the template when it runs: every row (as text, in a fixed order) and
    # every sequence position; an ARRAY, not concat_ws, which takes at most 100 arguments
    digests = [
        f"(SELECT coalesce(string_agg(md5(t::text), ',' ORDER BY md5(t::text)), '') FROM {_q(template)}.{_q(table)} t)"  # noqa: S608
        for table in by_table
    ]
    digests += [f"(SELECT last_value || ':' || is_called FROM {_q(template)}.{_q(name)})" for name in sequences]  # noqa: S608
    return _Plan(";\n".join(statements), "SELECT md5(array_to_string(ARRAY[" + ", ".join(digests) + "], '|'))")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# the plan per template version: (template schema oid, migrations recorded in it) -> plan
_plans: dict[tuple[int, int, int], _Plan] = {}


def _template_version(template: str) -> tuple[int, int, int] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s)::oid", [template])
        oid = cursor.fetchone()[0]
        if oid is None:
            return None
        cursor.execute(f"SELECT count(*), coalesce(max(id), 0) FROM {_q(template)}.django_migrations")  # noqa: S608
        count, last = cursor.fetchone()
    return oid, count, last


@dataclass(frozen=True)
class Template:
    """The template as the caller's transaction sees it, share-locked until that transaction ends."""

    name: str
    version: tuple[int, int, int]
    plan: _Plan

    def fingerprint(self) -> str:
        """What a copy made now holds: the template's identity and migrations (its version), every row
        and every sequence position. Two copies with the same fingerprint hold the same (one query,
        a few milliseconds: the template's tables are small)."""
        with connection.cursor() as cursor:
            cursor.execute(self.plan.fingerprint_sql)
            digest = cursor.fetchone()[0]
        return hashlib.sha256(f"{self.version}:{digest}".encode()).hexdigest()[:32]

    def copy_into(self, schema: str) -> None:
        """Create ``schema`` as a copy, in one round trip inside the caller's transaction."""
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {_q(schema)};\nSET LOCAL search_path = {_q(schema)};\n{self.plan.script}")
        connection.set_schema_to_public()  # the script moved search_path; make the wrapper set it again


def locked_template() -> Template | None:
    """The template, share-locked for the caller's transaction, with its copy plan (read from the
    catalog once per process and template version). None, logged, when there is no template to
    copy: provisioning by copy is off, the template is missing or holds what the copy cannot make."""
    template = template_schema()
    if template is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_LOCK_KEY])
    version = _template_version(template)
    if version is None:
        log.warning("tenant template %s is missing: run migrate_schemas", template)
        return None
    plan = _plans.get(version)
    if plan is None:
        try:
            plan = _copy_plan(template)
        except TemplateUnsupported as exc:
            log.warning("tenant template cannot be copied (%s)", exc)
            return None
        _plans.clear()
        _plans[version] = plan
    return Template(template, version, plan)


def copy_template(schema: str) -> bool:
    """Create ``schema`` as a copy of the template, inside the caller's transaction (the tenant row and
    its schema commit together or not at all). False, and nothing done, when there is no template to
    copy (the caller runs the migrations instead)."""
    template = locked_template()
    if template is None:
        return False
    template.copy_into(schema)
    return True
