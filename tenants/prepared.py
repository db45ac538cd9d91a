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
from django.db import connection

# psycopg prepares on explicit request only: no statement of Django's (client-side cursors never
# prepare anyway) is prepared behind its back
_EXPLICIT_ONLY = 2**31 - 1


def fetch_prepared(sql: str, params: list[Any]) -> list[tuple]:
    """Run one read statement (``%s`` placeholders) prepared on the current connection; all rows."""
    with connection.cursor() as cursor:  # connection open, search_path set for the current tenant
        if not settings.DATABASE_PREPARED_STATEMENTS:
            cursor.execute(sql, params)
            return cursor.fetchall()
        raw = cursor.cursor.connection
        if raw.prepare_threshold is None:
            raw.prepare_threshold = _EXPLICIT_ONLY
        start = time.monotonic()
        with connection.wrap_database_errors, psycopg.Cursor(raw) as server_cursor:
            server_cursor.execute(sql, params, prepare=True)
            rows = server_cursor.fetchall()
        if connection.queries_logged:
            elapsed = f"{time.monotonic() - start:.3f}"
            connection.queries_log.append({"sql": f"EXECUTE (prepared) {sql}", "time": elapsed})
        return rows
