"""What the client declared it can do, read from the request: the capabilities a tool needs, and
URL-mode elicitation.

**Client capabilities a tool needs** (``@tool(client_capabilities=...)``): MCP 2026-07-28 says a server
MUST NOT rely on a capability the client has not declared, and answers a request that needs one with
``-32021`` ``MissingRequiredClientCapabilityError`` (HTTP 400), whose ``data.requiredCapabilities`` is
a ``ClientCapabilities`` object naming what is missing (``{"sampling": {}}``).

On 2026-07-28 the capabilities come with every request, in
``_meta["io.modelcontextprotocol/clientCapabilities"]``. The handshake era declares them at
``initialize``, and this endpoint keeps no sessions: a tool that needs a capability is refused the
same way there, since the server cannot know the client declared it.

**URL-mode elicitation** for connector (re)connection, where the protocol allows it.

What the installed ``mcp``/``mcp_types`` (2.3.0) define:

- 2025-11-25: the ``-32042`` ``URLElicitationRequiredError`` (``mcp_types.jsonrpc.URL_ELICITATION_REQUIRED``,
  "protocol 2025-11-25 only"), for clients that declared ``elicitation.url`` *at initialize*. This
  endpoint keeps no sessions, so on a ``tools/call`` of that era the client's capabilities are unknown
  and the error is never sent: those clients get the ``isError`` result below.
- 2025-06-18: elicitation has no URL mode at all.
- 2026-07-28 (stateless): ``-32042`` is retired; capabilities come with every request in
  ``_meta["io.modelcontextprotocol/clientCapabilities"]``, and a ``tools/call`` may answer an
  ``InputRequiredResult`` (``resultType: "input_required"``) whose ``inputRequests`` hold an
  ``elicitation/create`` request in ``url`` mode; the client shows the URL and retries the same call
  with ``inputResponses`` (SEP-2322 multi round-trip, driven by the official client).

So: a modern request whose client declared ``elicitation.url`` gets, for a connector tool that needs
(re)connection, one URL elicitation ``connect:<provider>`` with the connect page. The retried call runs
the tool again; if the account is still not usable (or the user declined or cancelled), and for every
other client, the answer is the ``isError`` tool result with ``structuredContent``
``{class, provider, reason, connect_url, retryable}``. Never a 401/403 or ``mcp/www_authenticate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mcp_types as t
from mcp_types import jsonrpc

from declarations.tools import ToolConnectorError, ToolSpec
from mcp_tools.protocol import Incoming, ProtocolError

CAPABILITIES_META_KEY = "io.modelcontextprotocol/clientCapabilities"


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


@dataclass(frozen=True)
class Elicitation:
    url_mode: bool = False  # this request's client declared URL-mode elicitation (2026-07-28 only)
    answered: dict[str, str] = field(default_factory=dict)  # input key -> the user's action, on a retry


def for_request(incoming: Incoming, params: Any) -> Elicitation:
    """Handshake era: the capabilities were declared at initialize, unknown here (no URL mode)."""
    elicitation = declared(incoming, params).get("elicitation")
    url_mode = isinstance(elicitation, dict) and isinstance(elicitation.get("url"), dict)
    answered = {
        key: str(getattr(response, "action", ""))
        for key, response in (getattr(params, "input_responses", None) or {}).items()
    }
    return Elicitation(url_mode, answered)


def connector_result(exc: ToolConnectorError, elicitation: Elicitation) -> t.CallToolResult | t.InputRequiredResult:
    structured = exc.structured
    url = structured.get("connect_url")
    key = f"connect:{structured.get('provider', '')}"
    if url and elicitation.url_mode and key not in elicitation.answered:
        request = t.ElicitRequest(
            params=t.ElicitRequestURLParams(message=str(exc), url=url, elicitation_id=key),
        )
        return t.InputRequiredResult(input_requests={key: request}, result_type="input_required")
    return t.CallToolResult(
        content=[t.TextContent(type="text", text=str(exc))], structured_content=structured, is_error=True
    )
