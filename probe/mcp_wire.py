"""One raw MCP request of the current, stateless revision (2026-07-28): the per-request ``_meta``
envelope and the ``MCP-Protocol-Version`` / ``Mcp-Method`` / ``Mcp-Name`` headers, for callers that
need the exact status, headers and body of an answer (the test suite, the lifecycle check)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

MODERN = "2026-07-28"
_ids = itertools.count(1)


def modern_message(
    method: str,
    params: dict[str, Any] | None = None,
    *,
    version: str = MODERN,
    meta: dict[str, Any] | None = None,
    client_name: str = "probe",
) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON-RPC body and the headers of one request; ``meta`` adds or replaces entries of the
    request's ``_meta`` (e.g. an idempotency key, or other client capabilities)."""
    params = dict(params or {})
    params["_meta"] = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": client_name, "version": "1"},
        **(meta or {}),
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": version,
        "Mcp-Method": method,
    }
    if method == "tools/call":
        headers["Mcp-Name"] = params["name"]
    return {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}, headers


def modern_request(
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    version: str = MODERN,
    meta: dict[str, Any] | None = None,
    client_name: str = "probe",
    timeout: float = 20,
) -> httpx.Response:
    body, sent = modern_message(method, params, version=version, meta=meta, client_name=client_name)
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    return httpx.post(url, json=body, headers=sent, timeout=timeout)
