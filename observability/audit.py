"""Recording auth decisions in the audit trail (``AuthEvent``, tenant schema).

What is recorded (``docs/ops/auth-runbook.md``, "Audit trail"): every challenge and denial, every
token-endpoint answer, refresh-token reuse and authorization-code replay, revocations, upstream
(connector) refreshes, cross-tenant denials. Successful tool calls are *counted* in metrics and only
sampled here (``AUDIT_TOOL_CALL_SAMPLE_RATE``, default 0): they are the hot path, and the token that
made them has its own issuance event. ``AUDIT_ENABLED=0`` turns recording off.

Recording never changes the decision: a failed insert is logged and swallowed, inside a savepoint
when the caller is in a transaction. Nothing here accepts a token or secret.

Cost: one INSERT per recorded decision. Outside a caller's transaction it is one autocommitted
statement that sets ``synchronous_commit = off`` for itself only (``set_config(..., true)`` in a CTE,
one round trip instead of BEGIN, SET LOCAL, INSERT, COMMIT), so a denial does not wait for a WAL flush:
a flood of refused requests cannot turn the audit trail into an fsync per request. PostgreSQL's
asynchronous commit never corrupts or reorders; a server crash can lose the last fraction of a second
of audit rows (at most three ``wal_writer_delay``), an accepted trade for a trail of refusals.
"""

from __future__ import annotations

import logging
import random
import uuid

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest

from observability.models import AuthEvent
from observability.statements import count_unattributed_sql, insert_events_async_commit, insert_events_rule
from tenants.http import client_address

logger = logging.getLogger(__name__)
PUBLIC = "public"


def request_id(request: HttpRequest | None) -> str:
    """One id per request, shared by every event it records (the MCP principal's when there is one)."""
    if request is None:
        return ""
    rid = getattr(request, "audit_request_id", None)
    if rid is None:
        rid = request.audit_request_id = uuid.uuid4().hex
    return rid


def record(
    *,
    event: str,
    outcome: str = "",
    auth_class: str = "",
    user_id: int | None = None,
    client_id: str | None = "",
    tool: str = "",
    request: HttpRequest | None = None,
    request_id_value: str = "",
) -> None:
    if not _recording():
        return
    record_from(
        event=event,
        outcome=outcome,
        auth_class=auth_class,
        user_id=user_id,
        client_id=client_id,
        tool=tool,
        request_id_value=request_id_value or request_id(request),
        source_address=client_address(request) if request is not None else None,
    )


def record_from(
    *,
    event: str,
    outcome: str = "",
    auth_class: str = "",
    user_id: int | None = None,
    client_id: str | None = "",
    tool: str = "",
    request_id_value: str = "",
    source_address: str | None = None,
) -> None:
    """``record``, given what it would read from the request: for a caller that read the request's id
    and the client's address once and holds the request no longer (the MCP endpoint's layers)."""
    if not _recording():
        return
    row = AuthEvent(
        tenant=connection.schema_name,
        event=event[:40],
        outcome=outcome[:40],
        auth_class=auth_class[:40],
        user_id=user_id,
        client_id=(client_id or "")[:255],
        tool=tool[:100],
        request_id=request_id_value[:64],
        source_address=source_address,
    )
    try:
        _save([row])
    except DatabaseError:
        logger.exception("audit: could not record a %s event", row.event)


def _recording() -> bool:
    return bool(settings.AUDIT_ENABLED) and connection.schema_name != PUBLIC


def _save(rows: list[AuthEvent]) -> None:
    if connection.in_atomic_block:  # the caller's transaction commits them (a savepoint guards it)
        with transaction.atomic():
            insert_events_rule(rows)
    else:  # one statement of their own, committed without waiting for the WAL flush (see the docstring)
        insert_events_async_commit(rows)


def record_unattributed(*, event: str, auth_class: str = "", outcome: str = "") -> None:
    """An auth failure before any client is known (no credentials, an unknown or malformed token, an
    unknown client at the token endpoint): counted on one row per event, class, outcome and minute
    (``aggregated``, ``count``), not stored one by one, so a flood of made-up tokens cannot fill the
    tenant's trail or bury its real events. A known client's failures go through ``record``. One
    statement (an upsert on the aggregate's partial unique index), committed as ``record``'s are."""
    if not settings.AUDIT_ENABLED:
        return
    schema = connection.schema_name
    if schema == PUBLIC:
        return
    values = [schema, event[:40], auth_class[:40], outcome[:40]]
    try:
        with connection.cursor() as cursor:
            if connection.in_atomic_block:
                with transaction.atomic():
                    cursor.execute(count_unattributed_sql(async_commit=False), values)
            else:
                cursor.execute(count_unattributed_sql(async_commit=True), values)
    except DatabaseError:
        logger.exception("audit: could not count a %s event", event)


def sample_tool_call() -> bool:
    rate = settings.AUDIT_TOOL_CALL_SAMPLE_RATE
    return bool(settings.AUDIT_ENABLED and rate > 0 and (rate >= 1 or random.random() < rate))  # noqa: S311


def record_many(*, event: str, outcome: str, user_ids: list[int | None]) -> None:
    """One event per user id, in one INSERT (a batch job's successes: the connectors' proactive
    refresh records its batch at once). Same rules as ``record``."""
    if not settings.AUDIT_ENABLED or not user_ids:
        return
    schema = connection.schema_name
    if schema == PUBLIC:
        return
    rows = [
        AuthEvent(tenant=schema, event=event[:40], outcome=outcome[:40], user_id=user_id, client_id="")
        for user_id in user_ids
    ]
    try:
        _save(rows)
    except DatabaseError:
        logger.exception("audit: could not record %d %s events", len(rows), event)
