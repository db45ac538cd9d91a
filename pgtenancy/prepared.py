"""Hot read statements of a tenant as server-side prepared statements, one per tenant schema.

For the few statements run on every MCP request (``mcp_tools.auth``'s bearer statement, the CRM
contact read), PostgreSQL's parse, analysis and planning cost more than executing them: on this stack
the bearer statement took 0.45 ms as plain SQL and 0.09 ms prepared (docs/benchmarks.md).
Django's PostgreSQL backend binds parameters client-side and psycopg never prepares on such cursors, so
these statements go through a server-binding psycopg cursor on the same connection.

**One statement per tenant schema, no search path.** A ``TenantStatement`` names its tenant tables
``{tenant}.table``; each schema gets its own text, schema-qualified, so it reads that tenant's tables
whatever the connection's ``search_path``. PostgreSQL re-analyses and re-plans a prepared statement
whenever ``search_path`` differs from the one it was last planned under (PREPARE, "Notes"), so one
shared text, used by calls that alternate between tenants, was planned again on every call, after a
``SET search_path`` round trip of its own (docs/benchmarks.md, "Calls spread over many tenants").
These statements are sent without setting the path (django-tenants sets it before the first
statement of the request that goes through Django's cursor): the path stays as it was, and every
schema's statement keeps its plan while the connection goes from tenant to tenant.
psycopg keeps at most ``prepared_max`` prepared statements per connection (least recently used out,
``DEALLOCATE``); it is sized here for ``DATABASE_CONNECTION_MAX_SCHEMAS`` schemas per connection
(``pgtenancy.recycling`` closes a connection that has served more), so round-robin traffic does not
evict a statement before its schema comes round again. psycopg forgets them on reconnect.

The statements are sent through psycopg's ``RawCursor`` with ``$n`` placeholders: its conversion of
``%s`` placeholders is cached for 128 texts only, and one text per schema would miss that cache on
every call (30 µs a statement here).

Behind a transaction-mode pooler, prepared statements need PgBouncer >= 1.21 with
``max_prepared_statements`` set, and they would bypass ``pgtenancy.transaction_pooling``'s per-statement
search path: ``DATABASE_POOLER_TRANSACTION_MODE`` turns them off (``DATABASE_PREPARED_STATEMENTS``);
the schema-qualified text is then sent through Django's cursor.

Queries are still recorded in ``connection.queries_log`` when Django logs queries (DEBUG,
``CaptureQueriesContext``), so query counts stay honest.
"""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django_tenants.utils import quote_schema_name

# psycopg prepares on explicit request only: no statement of Django's (client-side cursors never
# prepare anyway) is prepared behind its back
_EXPLICIT_ONLY = 2**31 - 1
# hot statements per tenant schema the prepared-statement cache makes room for (four today: the bearer
# statement, the contact read, the token endpoint's grant and refresh-token reads; room for two more)
STATEMENTS_PER_SCHEMA = 6
_TENANT = "{tenant}"
# a table after FROM or JOIN that is neither {tenant}.name nor public.name (subqueries and LATERAL aside)
_UNQUALIFIED_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+(?!\{tenant\}\.|public\.|\(|LATERAL\b)(\S+)", re.IGNORECASE)


class TenantStatement:
    """A read statement over one tenant's tables: ``{tenant}.table`` for them (public tables written
    ``public.table``), ``%s`` for the parameters. ``for_schema`` gives the schema's own text."""

    def __init__(self, template: str) -> None:
        if _TENANT not in template or "%" in template.replace("%s", ""):
            raise ValueError("a TenantStatement names its tables {tenant}.name and has only %s placeholders")
        # sent without setting search_path, which may still be another tenant's: an unqualified table
        # would be read from that tenant, so every table must name its schema
        if unqualified := _UNQUALIFIED_TABLE.findall(template):
            raise ValueError(f"a TenantStatement must qualify every table ({{tenant}}. or public.): {unqualified}")
        self.template = template
        parts = template.split("%s")
        # the same text with PostgreSQL's own placeholders, for the server-binding cursor
        self.numbered = "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))

    def for_schema(self, schema: str, *, numbered: bool) -> str:
        return (self.numbered if numbered else self.template).replace(_TENANT, quote_schema_name(schema))

    def __str__(self) -> str:
        return self.template


def prepared_max() -> int:
    """psycopg's per-connection cap on prepared statements: every hot statement of every schema a
    connection may serve before it is recycled (``DATABASE_CONNECTION_MAX_SCHEMAS``; without a limit,
    as many schemas as routing remembers)."""
    schemas = settings.DATABASE_CONNECTION_MAX_SCHEMAS or settings.TENANT_IDENTITY_CACHE_SIZE
    return max(100, STATEMENTS_PER_SCHEMA * (schemas + 1))


def fetch_prepared(statement: TenantStatement, params: list[Any]) -> list[tuple]:
    """Run ``statement`` for the connection's current tenant schema, prepared on the connection; all rows.

    Sent without setting ``search_path`` first: the text names its schema, so it reads the tenant's
    tables whatever the path, and leaving the path alone keeps every schema's plan valid (PostgreSQL
    re-plans a statement used under another path than its last). django-tenants still sets the path
    before the first statement that goes through Django's cursor (``search_path_set_schemas``)."""
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: each ``connection.x`` is a thread-local look-up
    schema = db.schema_name
    if not settings.DATABASE_PREPARED_STATEMENTS:
        with db.cursor() as cursor:  # search_path set (or sent with the statement) as usual
            cursor.execute(statement.for_schema(schema, numbered=False), params)
            return cursor.fetchall()
    raw = _raw_connection(db)
    sql = statement.for_schema(schema, numbered=True)
    start = time.monotonic()
    server_cursor = _kept_cursor(db, raw)
    with db.wrap_database_errors:
        server_cursor.execute(sql, params, prepare=True)
        rows = server_cursor.fetchall()
    if db.queries_logged:
        elapsed = f"{time.monotonic() - start:.3f}"
        db.queries_log.append({"sql": f"EXECUTE (prepared) {sql}", "time": elapsed})
    return rows


def _kept_cursor(db: BaseDatabaseWrapper, raw: psycopg.Connection) -> psycopg.RawCursor:
    """One server-binding cursor per connection, kept from statement to statement: a new cursor
    builds its adapters and row loaders afresh (6-8 µs a statement in a request here,
    ``docs/benchmarks.md``). Kept on Django's wrapper (one per thread) beside the connection it
    belongs to; a new connection gets a new cursor. The results it holds are the last statement's
    rows, a few at most (these statements read by unique keys)."""
    kept = getattr(db, "_pgtenancy_cursor", None)
    if kept is None or kept.connection is not raw or kept.closed:
        kept = psycopg.RawCursor(raw)
        db._pgtenancy_cursor = kept
    return kept


def _raw_connection(db: BaseDatabaseWrapper) -> psycopg.Connection:
    """The psycopg connection under Django's, opened and checked as ``connection.cursor()`` would
    (health check, thread, broken transaction), without making a Django cursor (~20 µs) and without
    django-tenants' ``SET search_path``."""
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    db.validate_no_broken_transaction()
    raw = db.connection
    if raw.prepare_threshold is None and not db.in_atomic_block:
        # once per connection, in autocommit so that it stays: generic plans from the first execution.
        # Under the default (auto) PostgreSQL plans a statement afresh for its first five executions,
        # and with a statement per schema most schemas would never get past them; these statements
        # look rows up by unique keys, where the generic plan is the custom plan. Only prepared
        # statements (ours: Django binds on the client) and PL/pgSQL follow this setting.
        with db.wrap_database_errors:
            raw.execute("SET plan_cache_mode = force_generic_plan")
        raw.prepare_threshold = _EXPLICIT_ONLY
        raw.prepared_max = prepared_max()
    return raw
