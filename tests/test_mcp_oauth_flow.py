"""Done-when of the authorization-server and MCP issues, driven by the official mcp client."""

from __future__ import annotations

import anyio

from tests.mcp_client import connect, provider
from tests.oauth_flow import Browser


def run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


def test_sdk_client_discovers_registers_authorizes_and_calls(live):
    url = live.tenant_url("acme", "mcp")
    browser = Browser(type("T", (), {"url": lambda self, p: live.tenant_url("acme", p)})(), "member@acme.test")
    browser.login()
    oauth, consent = provider(url, browser)

    async def scenario():
        async with connect(url, oauth) as client:
            tools = await client.list_tools()
            names = {tool.name for tool in tools.tools}
            assert "crm_search_contacts" in names
            result = await client.call_tool("crm_search_contacts", {"query": "Ada"})
            assert not result.is_error, result
            assert result.structured_content["contacts"][0]["email"] == "ada@acme.example"
            return client.protocol_version

    version = run(scenario)
    assert version == "2026-07-28"
    assert len(consent.authorize_urls) == 1
    assert "resource=" in consent.authorize_urls[0] and "code_challenge_method=S256" in consent.authorize_urls[0]
