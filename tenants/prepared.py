"""Hot read statements as server-side prepared statements (psycopg's own ``prepare=True``).

For the few statements run on every MCP request (``mcp_tools.auth``'s bearer statement, the CRM
contact read), PostgreSQL's parse, analysis and planning cost more than executing them: on this stack
the bearer statement took 0.45 ms as plain SQL and 0.09 ms prepared (issue 14, docs/benchmarks.md).
Django's PostgreSQL backend binds parameters client-side and psycopg never prepares on such cursors, so
these statements go through a server-binding psycopg cursor on the same connection, after Django's
own cursor has opened it and django-tenants has set its ``search_path``.

Schema per tenant is safe: PostgreSQL re-analyses a prepared statement when ``search_path`` changed
since its last use (PREPARE, "Notes"), so the same statement in another tenant reads that tenant's
tables. psycopg keeps at most ``prepared_max`` (100) per connection and forgets them on reconnect.
Behind a transaction-mode pooler, prepared statements need PgBouncer >= 1.21 with
``max_prepared_statements`` set, and they would bypass ``config.transaction_pooling``'s per-statement
search path: ``DATABASE_POOLER_TRANSACTION_MODE`` turns them off (``DATABASE_PREPARED_STATEMENTS``).

Queries are still recorded in ``connection.queries_log`` when Django logs queries (DEBUG,
``CaptureQueriesContext``), so query counts stay honest.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django_tenants.utils import get_limit_set_calls

# psycopg prepares on explicit request only: no statement of Django's (client-side cursors never
# prepare anyway) is prepared behind its back
_EXPLICIT_ONLY = 2**31 - 1


def fetch_prepared(sql: str, params: list[Any]) -> list[tuple]:
    """Run one read statement (``%s`` placeholders) prepared on the current connection; all rows."""
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: each ``connection.x`` is a thread-local look-up
    if not settings.DATABASE_PREPARED_STATEMENTS:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    _connection_ready(db)
    db.validate_thread_sharing()
    raw = db.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _EXPLICIT_ONLY
    start = time.monotonic()
    with db.wrap_database_errors, psycopg.Cursor(raw) as server_cursor:
        server_cursor.execute(sql, params, prepare=True)
        rows = server_cursor.fetchall()
    if db.queries_logged:
        elapsed = f"{time.monotonic() - start:.3f}"
        db.queries_log.append({"sql": f"EXECUTE (prepared) {sql}", "time": elapsed})
    return rows


def _connection_ready(db: BaseDatabaseWrapper) -> None:
    """What ``connection.cursor()`` would do before this statement, without making a Django cursor
    and its psycopg cursor only to reach the connection (issue 14: ~20 µs per statement, two per MCP
    call): Django's health check (once per request, ``CONN_HEALTH_CHECKS``) and connect, as its
    ``_cursor`` does; then, unless the ``search_path`` is already the current tenant's (django-tenants'
    own test in ``_handle_search_path``, which ``set_tenant`` resets), a cursor after all, which sets it."""
    db.close_if_health_check_failed()
    db.ensure_connection()
    if not (get_limit_set_calls() and db.search_path_set_schemas):
        db.cursor().close()
