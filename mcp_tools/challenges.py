"""One taxonomy of auth failures, rendered into both challenge channels.

Every class has a fixed HTTP status, OAuth error code and ``retryable`` flag, so the same failure
always yields the same response and the same recovery step:

| class | HTTP | error | retryable | the client should |
|---|---|---|---|---|
| AUTH_REQUIRED | 401 | (none on HTTP; invalid_token in tool results) | yes | run the OAuth flow |
| INVALID_TOKEN | 401 | invalid_token | yes | refresh, else re-authorize |
| INSUFFICIENT_SCOPE | 403 | insufficient_scope | yes | re-authorize with ``scope`` (step-up) |
| TENANT_MISMATCH | 403 | invalid_token | no | stop: the user does not belong to this tenant |
| TENANT_INACTIVE | 403 | invalid_token | no | stop: the tenant is deactivated |

Channel: the HTTP form (status + ``WWW-Authenticate``, JSON-RPC error body with the class) unless
the OAuth client's profile says ``tool_result``, in which case ``tools/call`` answers 200 with an
``isError`` result carrying ``_meta["mcp/www_authenticate"]``. Failures before a client is known
(no or unusable token) and failures of methods other than ``tools/call`` always use HTTP.

Connector failures are not auth failures of the MCP token and are not members of ``AuthClass``: they
never produce a 401/403, a ``WWW-Authenticate`` header or ``mcp/www_authenticate``. A tool raises
``declarations.tools.ToolConnectorError`` and the call answers HTTP 200 (``mcp_tools.capabilities``):

| class | HTTP | retryable | answer, and what the client should do |
|---|---|---|---|
| CONNECTOR_REAUTH_REQUIRED | 200 | yes | a URL elicitation (2026-07-28 clients declaring ``elicitation.url``)
  or an ``isError`` result with ``connect_url``: send the user there, then retry |
| CONNECTOR_UNAVAILABLE | 200 | yes | an ``isError`` result with ``reason``: retry later |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import mcp_types as t


class AuthClass(Enum):
    # value: (HTTP status, OAuth error, retryable); the name is part of the value so that classes
    # sharing a status/error/retryable triple stay distinct members instead of becoming aliases
    AUTH_REQUIRED = ("AUTH_REQUIRED", 401, "invalid_token", True)
    INVALID_TOKEN = ("INVALID_TOKEN", 401, "invalid_token", True)
    INSUFFICIENT_SCOPE = ("INSUFFICIENT_SCOPE", 403, "insufficient_scope", True)
    TENANT_MISMATCH = ("TENANT_MISMATCH", 403, "invalid_token", False)
    TENANT_INACTIVE = ("TENANT_INACTIVE", 403, "invalid_token", False)

    def __init__(self, _name: str, status: int, oauth_error: str, retryable: bool) -> None:
        self.status = status
        self.oauth_error = oauth_error
        self.retryable = retryable


# JSON-RPC error code for auth failures in the HTTP channel's body (implementation-defined range)
AUTH_ERROR_CODE = -32001


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class AuthFailure(Exception):
    kind: AuthClass
    description: str
    scopes: tuple[str, ...] = field(default=())  # the scope set the client should hold after recovering
    # (user id, client id): whom the refusal of a token that exists concerns, for the audit trail
    # (``mcp_tools.observe``); set by the bearer check alone (None: no client known, or an admitted caller)
    subject: tuple[int | None, str] | None = field(default=None, compare=False)

    def challenge(self, resource_metadata: str, *, with_error: bool) -> str:
        parts = [f'resource_metadata="{_quote(resource_metadata)}"']
        if with_error:
            parts.append(f'error="{self.kind.oauth_error}"')
            parts.append(f'error_description="{_quote(self.description)}"')
        if self.scopes:
            parts.append(f'scope="{" ".join(self.scopes)}"')
        return "Bearer " + ", ".join(parts)

    def http_challenge(self, resource_metadata: str) -> str:
        # RFC 6750 §3.1: no error code when the request carried no credentials at all
        return self.challenge(resource_metadata, with_error=self.kind is not AuthClass.AUTH_REQUIRED)

    def structured(self) -> dict[str, object]:
        return {"class": self.kind.name, "retryable": self.kind.retryable, "description": self.description}

    def tool_result(self, resource_metadata: str) -> t.CallToolResult:
        """The Apps SDK form: an ``isError`` tool result whose ``_meta`` carries the challenge."""
        return t.CallToolResult(
            content=[t.TextContent(type="text", text=self.description)],
            is_error=True,
            _meta={
                "mcp/www_authenticate": [self.challenge(resource_metadata, with_error=True)],
                "mcp/error": self.structured(),
            },
        )
