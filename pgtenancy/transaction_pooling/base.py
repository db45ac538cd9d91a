"""django-tenants' PostgreSQL backend, made safe behind a transaction-mode pooler (PgBouncer
``pool_mode = transaction``). Chosen by ``DATABASE_POOLER_TRANSACTION_MODE`` (config/settings.py).

django-tenants points a connection at a schema with a ``SET search_path`` statement of its own, and
with ``TENANT_LIMIT_SET_CALLS`` only when the schema changes. A transaction-mode pooler hands each
transaction (in autocommit: each statement) whichever server connection is free, so that ``SET`` runs
on one server connection, the queries after it on others, and the session-level setting stays behind
for the next client of that server connection: a query meant for one tenant reads another tenant's
tables (``python -m bench pooler-check`` shows it). PostgreSQL 15 does not report ``search_path`` to the
client (it is not ``GUC_REPORT``), so the pooler cannot track and restore it either.

Here the search path travels with every statement instead: each one is sent as
``SET LOCAL search_path = ...; <statement>`` in one simple-protocol message (Django's default
client-side binding cursor sends simple-protocol queries). A multi-statement message is one implicit
transaction, so both run on the same server connection and the setting ends with that transaction;
inside ``atomic()`` it is re-set by every statement of the transaction. Same number of round trips
as django-tenants with ``TENANT_LIMIT_SET_CALLS`` on one schema; no ``SET`` round trip on a schema
change. Not covered (refused or documented in docs/scaling.md): server-side binding, server-side
cursors (``DISABLE_SERVER_SIDE_CURSORS`` is required), ``COPY``, and anything that needs a session:
session-level advisory locks, ``LISTEN``, temporary tables, ``SET`` without ``LOCAL``.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql.base import Cursor as DjangoCursor
from django_tenants.postgresql_backend import base as tenants_base
from django_tenants.utils import quote_schema_name
from psycopg import sql

# statements PostgreSQL refuses inside a transaction block, which no search path affects
_OUTSIDE_TRANSACTIONS = re.compile(r"\s*(CREATE\s+DATABASE|DROP\s+DATABASE|VACUUM|ALTER\s+SYSTEM)\b", re.IGNORECASE)


class SearchPathCursor(DjangoCursor):
    """A client-side binding cursor that sends ``search_path_sql`` in front of every statement."""

    search_path_sql = ""  # "SET LOCAL search_path = ...; " for the schema the cursor was opened in

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> SearchPathCursor:
        prefix = self.search_path_sql
        if not prefix or (isinstance(query, str) and _OUTSIDE_TRANSACTIONS.match(query)):
            return super().execute(query, params, **kwargs)
        if params is not None and "%" in prefix:
            prefix = prefix.replace("%", "%%")
        if isinstance(query, sql.Composable):
            query = sql.SQL(prefix) + query
        elif isinstance(query, bytes):
            query = prefix.encode() + query
        else:
            query = prefix + query
        super().execute(query, params, **kwargs)
        self.nextset()  # past the SET's (empty) result, to the statement's own
        return self

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        # psycopg pipelines executemany over the extended protocol, one statement per message: set the
        # path in an explicit transaction around the batch instead
        prefix = self.search_path_sql
        if not prefix:
            return super().executemany(query, params_seq, **kwargs)
        if self.connection.autocommit:
            with self.connection.transaction():
                super().execute(prefix)
                return super().executemany(query, params_seq, **kwargs)
        super().execute(prefix)
        return super().executemany(query, params_seq, **kwargs)


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prefixes: dict[tuple[str, ...], str] = {}

    def get_connection_params(self) -> dict[str, Any]:
        if self.settings_dict["OPTIONS"].get("server_side_binding") is True:
            raise ImproperlyConfigured(
                "transaction pooling sends the search path in a multi-statement "
                "message: server_side_binding must stay off"
            )
        if not self.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
            raise ImproperlyConfigured("transaction pooling needs DISABLE_SERVER_SIDE_CURSORS = True")
        params = super().get_connection_params()
        params["cursor_factory"] = SearchPathCursor
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = super().create_cursor(name)
        if name is None:
            paths = tuple(self._get_cursor_search_paths())  # validated by django-tenants
            prefix = self._prefixes.get(paths)
            if prefix is None:
                prefix = f"SET LOCAL search_path = {','.join(quote_schema_name(p) for p in paths)}; "
                self._prefixes[paths] = prefix
            cursor.search_path_sql = prefix
        return cursor

    def _handle_search_path(self, cursor: Any = None) -> None:
        """No separate ``SET``: every statement carries the path (``create_cursor``). Recorded as set,
        so ``tenants.routing.use_schema`` keeps skipping ``set_tenant`` while the schema stays."""
        self.search_path_set_schemas = self._get_cursor_search_paths()
