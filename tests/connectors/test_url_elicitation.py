"""A connector tool that needs the user to (re)connect, over MCP.

2026-07-28 clients that declare ``elicitation.url`` in the request's ``_meta`` get an
``input_required`` result holding a URL-mode ``elicitation/create`` for the connect page; the
official client hands it to its elicitation callback (here: the user connects in the browser) and
retries, and the retried call works. Everyone else gets the ``isError`` result with the URL in
``structuredContent``; none of it is a 401/403 or an ``mcp/www_authenticate`` challenge."""

from __future__ import annotations

import anyio
import httpx2
import mcp_types as t
import pytest
from django.conf import settings
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.mcp_raw import modern_request
from tests.support.mcp import platform_token

pytestmark = pytest.mark.timeout(90)


def with_capabilities(capabilities: dict):
    """``modern_request`` with the given client capabilities in ``_meta``."""

    def send(url: str, token: str, params: dict) -> dict:
        response = modern_request(
            url, "tools/call", params, token=token, meta={"io.modelcontextprotocol/clientCapabilities": capabilities}
        )
        assert response.status_code == 200 and "www-authenticate" not in response.headers, response.text
        result = response.json()["result"]
        assert "mcp/www_authenticate" not in (result.get("_meta") or {})
        return result

    return send


def test_wire_forms_by_declared_capability(live, oidc):
    key = add_oidc_provider(oidc)
    url = live.tenant_url("acme", "mcp")
    token = platform_token(live)
    connect_url = f"{settings.PUBLIC_BASE_URL}/t/acme/connections/{key}/connect/"
    params = {"name": "connector_profile", "arguments": {"provider": key}}

    asked = with_capabilities({"elicitation": {"url": {}}})(url, token, params)
    assert asked["resultType"] == "input_required" and "isError" not in asked
    assert list(asked["inputRequests"]) == [f"connect:{key}"]
    request = asked["inputRequests"][f"connect:{key}"]
    assert request["method"] == "elicitation/create"
    assert request["params"]["mode"] == "url" and request["params"]["url"] == connect_url
    assert connect_url in request["params"]["message"]

    declined = with_capabilities({"elicitation": {"url": {}}})(
        url, token, {**params, "inputResponses": {f"connect:{key}": {"action": "decline"}}}
    )
    assert declined["resultType"] == "complete" and declined["isError"] is True
    assert declined["structuredContent"]["class"] == "CONNECTOR_REAUTH_REQUIRED"
    assert declined["structuredContent"]["connect_url"] == connect_url

    # accepted, but the account is still not connected when the call is retried: no second round
    early = with_capabilities({"elicitation": {"url": {}}})(
        url, token, {**params, "inputResponses": {f"connect:{key}": {"action": "accept"}}}
    )
    assert early["resultType"] == "complete" and early["isError"] is True
    assert early["structuredContent"]["reason"] == "not_connected"

    for capabilities in ({}, {"elicitation": {"form": {}}}):  # no URL mode declared
        plain = with_capabilities(capabilities)(url, token, params)
        assert plain["resultType"] == "complete" and plain["isError"] is True
        assert plain["structuredContent"]["reason"] == "not_connected"


def _run(live, token: str, key: str, mode: str, on_elicit) -> t.CallToolResult:
    async def scenario() -> t.CallToolResult:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
            Client(
                streamable_http_client(live.tenant_url("acme", "mcp"), http_client=http),
                mode=mode,
                cache=None,
                elicitation_callback=on_elicit,
            ) as client,
        ):
            return await client.call_tool("connector_profile", {"provider": key})

    return anyio.run(scenario)


def test_official_client_connects_through_the_url_elicitation_and_the_retry_works(live, oidc):
    key = add_oidc_provider(oidc)
    token = platform_token(live)
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_account="erin")
    seen: list[t.ElicitRequestURLParams] = []

    async def on_elicit(context, params) -> t.ElicitResult:
        seen.append(params)
        # the user opens the URL: the connect page, the provider, the callback
        response = await anyio.to_thread.run_sync(browser.connect, key)
        assert response.status_code == 302
        return t.ElicitResult(action="accept")

    result = _run(live, token, key, "auto", on_elicit)
    assert len(seen) == 1 and seen[0].mode == "url"
    assert seen[0].url == f"{settings.PUBLIC_BASE_URL}/t/acme/connections/{key}/connect/"
    assert result.is_error is False, result
    assert result.structured_content["profile"]["sub"] == "erin"


def test_handshake_era_client_gets_the_is_error_result_even_with_url_elicitation(live, oidc):
    """2025-11-25 defines -32042, but only for capabilities declared at initialize; without sessions
    the endpoint cannot know them at tools/call, so it answers the isError form."""
    key = add_oidc_provider(oidc)
    token = platform_token(live)
    called: list[object] = []

    async def on_elicit(context, params) -> t.ElicitResult:
        called.append(params)
        return t.ElicitResult(action="accept")

    result = _run(live, token, key, "legacy", on_elicit)
    assert called == []
    assert result.is_error is True
    assert result.structured_content["class"] == "CONNECTOR_REAUTH_REQUIRED"
    assert result.structured_content["reason"] == "not_connected"
