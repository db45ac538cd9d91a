"""Client capabilities a tool needs (``@tool(client_capabilities=...)``): MCP 2026-07-28 says a server
MUST NOT rely on a capability the client has not declared, and answers a request that needs one with
``-32021`` ``MissingRequiredClientCapabilityError`` (HTTP 400), whose ``data.requiredCapabilities`` is
a ``ClientCapabilities`` object naming what is missing (``{"sampling": {}}``).

On 2026-07-28 the capabilities come with every request, in
``_meta["io.modelcontextprotocol/clientCapabilities"]``. The handshake era declares them at
``initialize``, and this endpoint keeps no sessions: a tool that needs a capability is refused the
same way there, since the server cannot know the client declared it.
"""

from __future__ import annotations

from typing import Any

from mcp_types import jsonrpc

from declarations.tools import ToolSpec
from mcp_tools.elicitation import CAPABILITIES_META_KEY
from mcp_tools.protocol import Incoming, ProtocolError


def declared(incoming: Incoming, params: Any) -> dict[str, Any]:
    """The client capabilities this request declares (none in the handshake era)."""
    if not incoming.modern:
        return {}
    meta = getattr(params, "meta", None) or {}
    capabilities = meta.get(CAPABILITIES_META_KEY) if isinstance(meta, dict) else None
    return capabilities if isinstance(capabilities, dict) else {}


def require(incoming: Incoming, params: Any, spec: ToolSpec) -> None:
    """Raise ``-32021`` when the tool needs a client capability this request does not declare."""
    if not spec.client_capabilities:
        return
    capabilities = declared(incoming, params)
    missing = {name: {} for name in spec.client_capabilities if not isinstance(capabilities.get(name), dict)}
    if missing:
        raise ProtocolError(
            jsonrpc.MISSING_REQUIRED_CLIENT_CAPABILITY,
            f"Missing required client capability: {', '.join(missing)}",
            {"requiredCapabilities": missing},
            incoming.request_id,
        )
