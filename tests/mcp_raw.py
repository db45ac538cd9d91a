"""Raw MCP requests over httpx, for asserting exact wire behaviour."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

# the MCP protocol revisions the tests speak, in one place: the current (stateless) one and the
# latest of the handshake era
MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
_ids = itertools.count(1)


def modern_request(
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    version: str = MODERN,
) -> httpx.Response:
    params = dict(params or {})
    params["_meta"] = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    }
    sent = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": version,
        "Mcp-Method": method,
    }
    if method == "tools/call":
        sent["Mcp-Name"] = params["name"]
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
    return httpx.post(url, json=body, headers=sent, timeout=20)


def call(url: str, token: str | None, name: str, arguments: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    return modern_request(url, "tools/call", {"name": name, "arguments": arguments or {}}, token=token, **kw)
