"""Bounded PostgreSQL backends whatever the number of tenants: a connection that has served
``DATABASE_CONNECTION_MAX_SCHEMAS`` distinct tenant schemas is closed after the request.

Each PostgreSQL backend keeps the catalog entries (relcache, catcache) of every relation it has opened,
and here the prepared statements of every schema (``pgtenancy.prepared``), without eviction while the
connection lives: about 0.3 MB per tenant schema for a ``tools/call``, so a persistent connection
(``CONN_MAX_AGE``) that sees calls for 1,000 tenants holds ~300 MB (docs/benchmarks.md). Closing it
once it has seen N schemas bounds that to about N x 0.35 MB, at the price of a reconnect every N
schemas and a first call per schema on the new backend that fills its caches again (docs/scaling.md
weighs this against routing tenants to workers). 0 turns it off.

Counted at the end of each request, in the schema the request ended in (``connection.schema_name``),
for the connection that served it: a new connection starts counting from zero.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django_tenants.utils import get_public_schema_name


def schemas_served() -> set[str]:
    """The distinct tenant schemas the current connection (this thread's) has ended requests in."""
    raw = connection.connection
    owner, served = getattr(connection, "_tenant_schemas_served", (None, set()))
    if owner is not raw:  # another (or no) underlying connection since it was recorded
        served = set()
        connection._tenant_schemas_served = (raw, served)
    return served


def recycle_connection(**_: Any) -> None:
    """``request_finished`` receiver: note the request's schema; close the connection once it has
    served ``DATABASE_CONNECTION_MAX_SCHEMAS`` schemas. Never inside a transaction (a test's, or an
    ``atomic`` still open), where closing would lose work."""
    limit = settings.DATABASE_CONNECTION_MAX_SCHEMAS
    if not limit or connection.connection is None or connection.in_atomic_block:
        return
    schema = connection.schema_name
    if not schema or schema == get_public_schema_name():
        return
    served = schemas_served()
    served.add(schema)
    if len(served) >= limit:
        connection.close()
