"""MCP tools of the connectors app. A connector failure is not an auth failure of the MCP token: the
tool answers an ``isError`` result with class ``CONNECTOR_REAUTH_REQUIRED`` (and the connect URL)
or ``CONNECTOR_UNAVAILABLE`` in ``structuredContent``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from connectors import http, selectors, tokens, upstream
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from connectors.models import Provider
from declarations.idempotency import IDEMPOTENCY_META_KEY
from declarations.principal import ToolContext
from declarations.tools import (
    CONNECTOR_REAUTH_REQUIRED,
    CONNECTOR_UNAVAILABLE,
    ToolArgumentError,
    ToolConnectorError,
    arguments_schema,
    tool,
)
from tenants.resources import canonical_base_url

# a provider key as connectors.models.Provider.key allows it
PROVIDER = {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}
PROVIDER_AND_QUERY = arguments_schema(
    {"provider": PROVIDER, "query": {"type": "string", "maxLength": 200}}, required=("provider",)
)
PROFILE_FIELDS = ("sub", "email", "email_verified", "name", "preferred_username", "login", "id")


def connect_url(context: ToolContext, provider_key: str) -> str:
    """The connect page on the tenant's canonical URL (its primary domain, or ``PUBLIC_BASE_URL/t/<slug>``)."""
    base = canonical_base_url(tenant_id=context.principal.tenant_id, slug=context.principal.tenant_slug)
    return f"{base}/connections/{provider_key}/connect/"


def connector_failure(context: ToolContext, provider_key: str, exc: ConnectorError) -> ToolConnectorError:
    if isinstance(exc, ProviderUnavailable):
        return ToolConnectorError(
            f"{provider_key} is unavailable right now; try again later",
            {"class": CONNECTOR_UNAVAILABLE, "provider": provider_key, "reason": exc.code, "retryable": True},
        )
    url = connect_url(context, provider_key)
    return ToolConnectorError(
        f"Connect your {provider_key} account first: {url}",
        {
            "class": CONNECTOR_REAUTH_REQUIRED,
            "provider": provider_key,
            "reason": exc.code,
            "connect_url": url,
            "retryable": True,
        },
    )


@contextmanager
def connector_failures(context: ToolContext, provider_key: str) -> Iterator[None]:
    """Whatever goes wrong with a connected account becomes the tool's connector answer."""
    try:
        yield
    except http.OutboundError as exc:
        raise connector_failure(context, provider_key, ProviderUnavailable(exc.code, str(exc))) from exc
    except (ReauthRequired, ProviderUnavailable) as exc:
        raise connector_failure(context, provider_key, exc) from exc
    except ConnectorError as exc:
        raise connector_failure(context, provider_key, ProviderUnavailable(exc.code, str(exc))) from exc


@tool(
    name="connector_profile",
    title="Connected account profile",
    description="Your profile at a connected provider (OpenID userinfo), e.g. to confirm which account is connected.",
    input_schema=arguments_schema({"provider": PROVIDER}, required=("provider",)),
    scopes=("connections",),
    read_only=True,
)
def connector_profile(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    key = arguments["provider"]
    provider = _provider_with(key, "userinfo_endpoint", "a userinfo endpoint")
    user_id = context.principal.user_id
    with connector_failures(context, key):
        token = tokens.access_token(user_id=user_id, provider_key=key)
        try:
            info = upstream.userinfo(provider, token)
        except ConnectorError as exc:
            if exc.code != "invalid_token":
                raise
            # the provider refused a token we thought valid (revoked upstream): one refresh decides
            token = tokens.refresh_refused(user_id=user_id, provider_key=key, refused_token=token)
            info = upstream.userinfo(provider, token)
    return {"provider": key, "profile": {k: info[k] for k in PROFILE_FIELDS if k in info}}


MCP_VERSION = "2026-07-28"


def _call_upstream_tool(
    provider: Provider, token: str, name: str, arguments: dict[str, Any], idempotency_key: str | None = None
) -> http.Response:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "tenant-oauth-mcp connectors", "version": "1"},
    }
    if idempotency_key is not None:  # exactly-once upstream: the MCP _meta key and the HTTP header
        meta[IDEMPOTENCY_META_KEY] = idempotency_key
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MCP_VERSION,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key  # draft-ietf-httpapi-idempotency-key-header
    return upstream.call(provider, "POST", provider.mcp_endpoint, json_body=body, headers=headers, bearer=token)


@tool(
    name="connector_crm_search",
    title="Search contacts at a connected workspace",
    description=(
        "Search the CRM contacts of another workspace you connected (a provider with an MCP endpoint), "
        "through your connected account there."
    ),
    input_schema=PROVIDER_AND_QUERY,
    scopes=("connections",),
    read_only=True,
)
def connector_crm_search(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    key = arguments["provider"]
    result = _upstream_tool_result(context, key, "crm_search_contacts", {"query": arguments.get("query", "")})
    if result.get("isError"):
        raise ToolArgumentError("the connected workspace refused the search")
    return {"provider": key, "contacts": (result.get("structuredContent") or {}).get("contacts", [])}


def _provider_with(key: str, field: str, what: str) -> Provider:
    """The provider ``key`` of this workspace, if it has ``field`` (``what`` names it for the caller)."""
    provider = selectors.provider_by_key(key)
    if provider is None or not getattr(provider, field):
        raise ToolArgumentError(f"no provider {key!r} with {what} in this workspace")
    return provider


def _answer(
    context: ToolContext,
    key: str,
    send: Callable[[str], http.Response],
    *,
    usable: Callable[[dict[str, Any]], bool],
    source: str,
) -> dict[str, Any]:
    """Send with the account's token; if the provider answers 401 (expired or revoked upstream), one
    forced refresh decides: retried once with the new token, and a second refusal means reconnect.
    The answer: a 200 JSON object that is ``usable``, else the provider is unavailable."""
    with connector_failures(context, key):
        user_id = context.principal.user_id
        token = tokens.access_token(user_id=user_id, provider_key=key)
        response = send(token)
        if response.status == 401:
            response = send(tokens.refresh_refused(user_id=user_id, provider_key=key, refused_token=token))
        if response.status in (401, 403):
            raise ReauthRequired("insufficient_upstream_access", "the connected account cannot use that API")
        body = response.json()
        if response.status != 200 or not isinstance(body, dict) or not usable(body):
            raise ProviderUnavailable("upstream_error", f"the provider's {source} answered HTTP {response.status}")
    return body


def _upstream_tool_result(
    context: ToolContext, key: str, name: str, arguments: dict[str, Any], *, idempotency_key: str | None = None
) -> dict[str, Any]:
    """``tools/call`` of ``name`` at the provider's MCP endpoint through the user's connected account
    (one forced refresh on a 401); the JSON-RPC ``result``."""
    provider = _provider_with(key, "mcp_endpoint", "an MCP endpoint")
    body = _answer(
        context,
        key,
        lambda token: _call_upstream_tool(provider, token, name, arguments, idempotency_key),
        usable=lambda body: "result" in body,
        source="MCP endpoint",
    )
    return body["result"]


@tool(
    name="connector_crm_contacts",
    title="Contacts at a connected workspace",
    description=(
        "Search the CRM contacts of another workspace you connected (a provider with a REST API), "
        "through your connected account there."
    ),
    input_schema=PROVIDER_AND_QUERY,
    scopes=("connections",),
    read_only=True,
)
def connector_crm_contacts(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    key = arguments["provider"]
    provider = _provider_with(key, "api_base_url", "a REST API")
    url = f"{provider.api_base_url}/crm/contacts?{urlencode({'query': arguments.get('query', '')})}"
    body = _answer(
        context,
        key,
        lambda token: upstream.call(provider, "GET", url, bearer=token),
        usable=lambda body: isinstance(body.get("contacts"), list),
        source="API",
    )
    fields = ("id", "name", "email", "company", "phone")
    contacts = [{f: c.get(f) for f in fields if f in c} for c in body["contacts"] if isinstance(c, dict)]
    return {"provider": key, "contacts": contacts}


@tool(
    name="connector_crm_create_note",
    title="Add a note at a connected workspace",
    description=(
        "Add a note to a contact of another workspace you connected (a provider with an MCP endpoint). "
        "Send an idempotency key in _meta so a retried call adds the note once."
    ),
    input_schema=arguments_schema(
        {
            "provider": PROVIDER,
            "contact_id": {"type": "integer", "minimum": 1},
            "body": {"type": "string", "minLength": 1, "maxLength": 5000},
        },
        required=("provider", "contact_id", "body"),
    ),
    scopes=("connections",),
    read_only=False,
    writes_upstream=True,
)
def connector_crm_create_note(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    """An upstream write: the provider's ``crm_create_note`` with the idempotency key the endpoint derived
    for this call (``ToolContext.upstream_idempotency_key``); after a refresh forced by a 401 (expired or
    revoked upstream) the request is sent again, once, with the same key."""
    key = arguments["provider"]
    upstream_arguments = {"contact_id": arguments["contact_id"], "body": arguments["body"]}
    # no answer from the provider is safe to retry with the same key: the provider dedups
    result = _upstream_tool_result(
        context, key, "crm_create_note", upstream_arguments, idempotency_key=context.upstream_idempotency_key
    )
    if result.get("isError"):
        raise ToolArgumentError("the connected workspace refused the note")
    note = result.get("structuredContent") or {}
    return {"provider": key, "note": {k: note.get(k) for k in ("id", "contact_id", "body")}}
