"""Raw MCP requests over httpx, for asserting exact wire behaviour."""

from __future__ import annotations

from typing import Any

import httpx

from probe.mcp_wire import MODERN
from probe.mcp_wire import modern_request as probe_request

# the MCP protocol revisions the tests speak, in one place: the current (stateless) one and the
# latest of the handshake era
HANDSHAKE = "2025-11-25"
__all__ = ["HANDSHAKE", "MODERN", "call", "modern_request"]


def modern_request(url: str, method: str, params: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    return probe_request(url, method, params, client_name="raw-test", **kw)


def call(url: str, token: str | None, name: str, arguments: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    return modern_request(url, "tools/call", {"name": name, "arguments": arguments or {}}, token=token, **kw)
