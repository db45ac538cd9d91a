"""What the checks need besides the official client: raw ``tools/call`` requests (to see the exact
status and challenge of a refusal), RFC 7009 revocation, and running one official-client call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from mcp.client.auth import OAuthClientProvider
from mcp.types import CallToolResult

from probe.mcp_client import connect
from probe.mcp_wire import modern_request
from probe.oauth_flow import Client


@dataclass(frozen=True)
class Answer:
    status: int
    challenge: str  # the WWW-Authenticate header, "" when absent
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        """A tool result that is not an error."""
        result = self.body.get("result")
        return self.status == 200 and isinstance(result, dict) and result.get("isError") is False

    def field(self, name: str) -> str | None:
        return challenge_field(self.challenge, name)

    def describe(self) -> str:
        error = self.body.get("error") or {}
        cls = (error.get("data") or {}).get("class") if isinstance(error, dict) else None
        return (
            f"HTTP {self.status}" + (f" {cls}" if cls else "") + (f" ({self.field('error')})" if self.challenge else "")
        )


def challenge_field(challenge: str, name: str) -> str | None:
    match = re.search(rf'{name}="((?:[^"\\]|\\.)*)"', challenge)
    return match.group(1) if match else None


def call(
    url: str, token: str, name: str, arguments: dict[str, Any] | None = None, *, meta: dict[str, Any] | None = None
) -> Answer:
    """One ``tools/call`` of the current revision (stateless), with a bearer token; ``meta`` adds
    entries to the request's ``_meta`` (e.g. an idempotency key)."""
    params = {"name": name, "arguments": arguments or {}}
    response = modern_request(
        url, "tools/call", params, token=token, meta=meta, client_name="auth-lifecycle-test", timeout=30
    )
    try:
        data = response.json()
    except ValueError:
        data = {}
    return Answer(response.status_code, response.headers.get("www-authenticate", ""), data)


def revoke(client: Client, token: str, hint: str) -> int:
    """RFC 7009 revocation by the (public) client that holds the token."""
    response = httpx.post(
        client.tenant.url("revoke_token/"),
        data={"token": token, "token_type_hint": hint, "client_id": client.client_id},
        timeout=30,
    )
    return response.status_code


def sdk_call(url: str, oauth: OAuthClientProvider, name: str, arguments: dict[str, Any]) -> CallToolResult:
    """One tool call through the official client (its own session; the provider keeps the tokens)."""

    async def go() -> CallToolResult:
        async with connect(url, oauth) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(go)
