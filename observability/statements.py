"""The audit trail's hand-written SQL, each statement beside the ORM expression it mirrors (the rule);
``tests/test_statements.py`` runs both on the same rows. Change them together.

Both are one autocommitted statement that sets ``synchronous_commit = off`` for itself only (a CTE
calling ``set_config(..., true)``): why, in ``observability.audit``."""

from __future__ import annotations

import functools

from django.db import connection
from django.db.models import F
from django.utils import timezone

from observability.models import AuthEvent

_ASYNC_COMMIT = "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)) "


def insert_events_rule(rows: list[AuthEvent]) -> None:
    AuthEvent.objects.bulk_create(rows)


@functools.cache
def _insert_shape() -> tuple[tuple, str, str, str]:
    """The fields written, the table, its column list and one row's typed placeholders: from the
    model's metadata, computed once (every audited decision pays this statement)."""
    fields = tuple(field for field in AuthEvent._meta.concrete_fields if not field.primary_key)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    # typed placeholders: a VALUES list would otherwise take untyped parameters as text (inet refuses it)
    row_sql = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in fields) + ")"
    return fields, connection.ops.quote_name(AuthEvent._meta.db_table), columns, row_sql


def insert_events_async_commit(rows: list[AuthEvent]) -> None:
    fields, table, columns, row_sql = _insert_shape()
    values = [field.get_db_prep_save(field.pre_save(row, add=True), connection) for row in rows for field in fields]
    # names and types from the model's metadata, values as parameters
    rows_sql = ", ".join([row_sql] * len(rows))
    insert = f"INSERT INTO {table} ({columns}) SELECT v.* FROM async_commit, (VALUES {rows_sql}) AS v"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(_ASYNC_COMMIT + insert, values)


def count_unattributed_rule(*, tenant: str, event: str, auth_class: str, outcome: str) -> None:
    """One aggregated row per event, class, outcome and minute (its ``created_at``), counting."""
    minute = timezone.now().replace(second=0, microsecond=0)
    key = {"aggregated": True, "created_at": minute, "event": event, "auth_class": auth_class, "outcome": outcome}
    if not AuthEvent.objects.filter(**key).update(count=F("count") + 1):
        row = AuthEvent.objects.create(
            tenant=tenant, event=event, auth_class=auth_class, outcome=outcome, aggregated=True
        )
        AuthEvent.objects.filter(pk=row.pk).update(created_at=minute)  # auto_now_add wrote the instant


@functools.cache
def count_unattributed_sql(*, async_commit: bool) -> str:
    """Parameters: tenant, event, class, outcome."""
    opts, quote = AuthEvent._meta, connection.ops.quote_name
    table = quote(opts.db_table)

    def column(name: str) -> str:
        return quote(opts.get_field(name).column)

    minute = "date_trunc('minute', now())"
    names = ("created_at", "tenant", "event", "auth_class", "outcome", "client_id", "tool", "request_id",
             "aggregated", "count")  # fmt: skip
    row = f"{minute}, %s, %s, %s, %s, '', '', '', true, 1"
    key = ", ".join(column(name) for name in ("created_at", "event", "auth_class", "outcome"))
    head = _ASYNC_COMMIT if async_commit else ""
    source = "SELECT " + row + (" FROM async_commit" if async_commit else "")  # noqa: S608 (constants)
    # names from the model's metadata, values as parameters
    return (
        f"{head}INSERT INTO {table} ({', '.join(column(n) for n in names)}) {source} "
        f"ON CONFLICT ({key}) WHERE {column('aggregated')} "
        f"DO UPDATE SET {column('count')} = {table}.{column('count')} + 1"
    )
