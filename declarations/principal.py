"""What a tool handler knows about its caller: the principal, never a token or the HTTP request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: int | None  # None for an anonymous caller of a ``noauth`` tool
    tenant_id: int
    tenant_slug: str
    client_id: str | None
    scopes: frozenset[str]
    request_id: str


@dataclass(frozen=True)
class ToolContext:
    principal: Principal
    # exactly-once: for a ``writes_upstream`` tool called with an idempotency key, the key to
    # send upstream, derived from (tenant, user, client, tool, client key): the same on every retry
    upstream_idempotency_key: str | None = None
