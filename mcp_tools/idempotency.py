"""Exactly-once write tools: an idempotency key on ``tools/call``.

The client sends the key in the request's ``_meta`` under ``declarations.idempotency.IDEMPOTENCY_META_KEY``.
A key means something only for a write tool (a read-only tool ignores it); its scope is the tenant (the
schema), the user, the client, the tool and the key; the arguments' SHA-256 over canonical JSON is
stored with it.

- **Tools that write here** (``crm_create_note``...): the record is inserted first, *inside the same
  transaction* as the tool's write (``tenants.guard.tenant_write`` nests as a savepoint), then its
  result is stored in it, and both commit or neither does. A concurrent duplicate's ``INSERT ... ON
  CONFLICT DO NOTHING`` waits on the unique index for the first transaction, then finds the committed
  record and returns its result; if the first rolled back it runs itself, as a normal call.
- **Tools that write upstream** (``writes_upstream=True``): the connector must not run inside an open
  transaction (a token refresh commits on its own), so the key is claimed first in its own short
  transaction (``pending``), the tool runs with an upstream key derived from the scope (the same on
  every retry, so the provider deduplicates a repeat), and the result completes the record. A duplicate
  waits up to ``IDEMPOTENCY_WAIT_SECONDS`` for a running claim, then gets a retryable "in progress"
  error; a claim older than ``IDEMPOTENCY_PENDING_LEASE_SECONDS`` (its worker died) is taken over.

Only successful results are stored: an ``isError`` result, an auth failure (``TENANT_MISMATCH`` from the
write guard) or any exception rolls the record back, so the retry after recovery is a normal call.
Records older than ``IDEMPOTENCY_RETENTION_SECONDS`` no longer answer and are purged per tenant
(``mcp_tools.tasks``).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta
from typing import Any

import mcp_types as t
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from mcp_types import jsonrpc

from declarations.idempotency import IDEMPOTENCY_META_KEY, IDEMPOTENCY_TOOL_META, IDEMPOTENT_REPLAY_META, KEY_PATTERN
from mcp_tools.execution import ToolCall, call_tool, check_arguments
from mcp_tools.models import IdempotencyRecord
from mcp_tools.protocol import ProtocolError
from mcp_tools.statements import CLAIM, DELETE, DONE, FIND

IDEMPOTENCY_IN_PROGRESS_CODE = -32009  # implementation-defined server error range (JSON-RPC)


class IdempotencyInProgress(ProtocolError):
    """A call with this key is still running: retry later (HTTP 409, ``retryable``)."""

    def __init__(self, request_id: Any) -> None:
        super().__init__(
            IDEMPOTENCY_IN_PROGRESS_CODE,
            "A call with this idempotency key is still in progress; retry later",
            {"class": "IDEMPOTENCY_IN_PROGRESS", "retryable": True},
            request_id,
        )

    @property
    def http_status(self) -> int:
        return 409


def key_reused(request_id: Any) -> ProtocolError:
    return ProtocolError(
        jsonrpc.INVALID_PARAMS,
        "This idempotency key was already used for this tool with other arguments; use a new key",
        {"class": "IDEMPOTENCY_KEY_REUSED", "retryable": False},
        request_id,
    )


def requested_key(meta: Any, request_id: Any) -> str | None:
    """The key from the request's ``_meta`` (None when absent); a malformed key is refused."""
    if not isinstance(meta, dict) or IDEMPOTENCY_META_KEY not in meta:
        return None
    key = meta[IDEMPOTENCY_META_KEY]
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ProtocolError(
            jsonrpc.INVALID_PARAMS,
            f"_meta[{IDEMPOTENCY_META_KEY!r}] must be 1-255 visible ASCII characters",
            {"class": "IDEMPOTENCY_KEY_INVALID", "retryable": False},
            request_id,
        )
    return key


def arguments_hash(arguments: dict[str, Any]) -> str:
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def upstream_key(call: ToolCall) -> str:
    """The key a tool sends upstream: derived from the whole scope, so the same on every retry of the
    call and different for another tenant, user, client or tool that happens to pick the same key."""
    p = call.caller.principal
    scope = json.dumps([p.tenant_id, p.user_id, p.client_id or "", call.spec.name, call.idempotency_key])
    return hashlib.sha256(scope.encode()).hexdigest()


def call_tool_once(call: ToolCall) -> t.CallToolResult | t.InputRequiredResult:
    """``execution.call_tool``, exactly once per idempotency key when the request carries one."""
    check_arguments(call.spec, call.arguments, call.request_id)  # step 6 comes before any record (a side effect)
    if call.idempotency_key is None or call.caller.is_anonymous:
        return call_tool(call)
    digest = arguments_hash(call.arguments)
    return (_upstream if call.spec.writes_upstream else _local)(call, digest)


def _succeeded(result: t.CallToolResult | t.InputRequiredResult) -> bool:
    """Only a finished, successful result is stored; an error or a request for input (URL elicitation)
    leaves no record, so the retry is a normal call."""
    return isinstance(result, t.CallToolResult) and not result.is_error


def _scope(call: ToolCall) -> list[Any]:
    principal = call.caller.principal
    return [principal.user_id, principal.client_id or "", call.spec.name, call.idempotency_key]


def _expired(created_at: datetime) -> bool:
    return created_at < timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_RETENTION_SECONDS)


def _claim(cursor: Any, scope: list[Any], digest: str) -> int | None:
    now = timezone.now()
    cursor.execute(CLAIM, [*scope, digest, now, now])
    row = cursor.fetchone()
    return row[0] if row else None


def _replay(stored: Any) -> t.CallToolResult:
    data = json.loads(stored) if isinstance(stored, str) else dict(stored)
    data["_meta"] = {**(data.get("_meta") or {}), IDEMPOTENT_REPLAY_META: True}
    return t.CallToolResult.model_validate(data)


def _stored(result: t.CallToolResult) -> str:
    return json.dumps(result.model_dump(by_alias=True, exclude_none=True, mode="json"), ensure_ascii=False)


def _existing(cursor: Any, scope: list[Any], digest: str, request_id: Any) -> tuple[int, str, Any, datetime] | None:
    """The record under this key, locked: ``(id, state, stored result, updated_at)``. None when there
    is none, or when it had expired (deleted here, so the key can be claimed again). The same key with
    other arguments is refused."""
    cursor.execute(FIND, scope)
    found = cursor.fetchone()
    if found is None:
        return None
    found_id, found_hash, state, stored, created_at, updated_at = found
    if _expired(created_at):
        cursor.execute(DELETE, [found_id])
        return None
    if found_hash != digest:
        raise key_reused(request_id)
    return found_id, state, stored, updated_at


def _local(call: ToolCall, digest: str) -> t.CallToolResult | t.InputRequiredResult:
    scope = _scope(call)
    with transaction.atomic(), connection.cursor() as cursor:
        for _ in range(2):  # a second round only after deleting an expired record
            record_id = _claim(cursor, scope, digest)  # a concurrent duplicate waits here
            if record_id is not None:
                break
            found = _existing(cursor, scope, digest, call.request_id)
            if found is None:
                continue
            _, state, stored, _ = found
            if state != IdempotencyRecord.State.DONE:
                raise IdempotencyInProgress(call.request_id)
            return _replay(stored)
        else:  # pragma: no cover - needs a concurrent delete between two statements
            raise IdempotencyInProgress(call.request_id)
        result = call_tool(call)
        if _succeeded(result):
            cursor.execute(DONE, [_stored(result), timezone.now(), record_id])
        else:
            transaction.set_rollback(True)  # no record: the retry is a normal call
        return result


def _upstream(call: ToolCall, digest: str) -> t.CallToolResult | t.InputRequiredResult:
    scope = _scope(call)
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            record_id = _claim(cursor, scope, digest)
            if record_id is None:
                found = _existing(cursor, scope, digest, call.request_id)
                if found is None:  # none, or it had expired: claim again at once
                    continue
                found_id, state, stored, updated_at = found
                if state == IdempotencyRecord.State.DONE:
                    return _replay(stored)
                lease = timedelta(seconds=settings.IDEMPOTENCY_PENDING_LEASE_SECONDS)
                if updated_at < timezone.now() - lease:  # the claimant died: take the call over
                    IdempotencyRecord.objects.filter(pk=found_id).update(updated_at=timezone.now())
                    record_id = found_id
        if record_id is not None:
            break
        if time.monotonic() >= deadline:
            raise IdempotencyInProgress(call.request_id)
        time.sleep(0.1)
    finished = False
    try:
        result = call_tool(call, upstream_idempotency_key=upstream_key(call))
        if _succeeded(result):
            with connection.cursor() as cursor:
                cursor.execute(DONE, [_stored(result), timezone.now(), record_id])
            finished = True
        return result
    finally:
        if not finished:  # nothing stored: the retry is a normal call (the provider dedups its repeat)
            IdempotencyRecord.objects.filter(pk=record_id, state=IdempotencyRecord.State.PENDING).delete()


def purge_expired() -> int:
    """Delete this tenant's records older than the retention (run per tenant by ``mcp_tools.tasks``)."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_RETENTION_SECONDS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def tool_meta(spec_is_write: bool) -> dict[str, Any]:
    """What ``tools/list`` says about the key on a tool (nothing for a read-only tool)."""
    if not spec_is_write:
        return {}
    return {
        IDEMPOTENCY_TOOL_META: {
            "metaKey": IDEMPOTENCY_META_KEY,
            "retentionSeconds": settings.IDEMPOTENCY_RETENTION_SECONDS,
        }
    }
