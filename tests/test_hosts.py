"""DNS rebinding: the hosts development serves (loopback names, ``PUBLIC_BASE_URL``'s host,
``ALLOWED_HOSTS``, tenant domains added at run time) and the 400 for any other ``Host``, on the MCP
endpoint and on every other page. The MCP request is the one the MCP conformance suite's
``dns-rebinding-protection`` scenario sends: an unauthenticated ``initialize`` with the rebinding
page's own ``Origin``, to a tenant whose ``tenant_info`` tool is open without authorization (so a
served host answers 200). Over real HTTP against the live server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from bench.common import tool_policy_override

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "rebinding", "version": "1"},
    },
}


@pytest.fixture
def open_tool(live) -> Iterator[None]:
    with tool_policy_override("acme", "tenant_info", enabled=True, noauth=True, scopes=""):
        yield


def initialize(live, host: str, origin: bool = True) -> httpx.Response:
    headers = {
        "Host": host,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **({"Origin": f"http://{host}"} if origin else {}),
    }
    return httpx.post(live.tenant_url("acme", "mcp"), content=json.dumps(INITIALIZE), headers=headers, timeout=20)


def port_of(live) -> str:
    return live.url.rsplit(":", 1)[1]


def test_a_rebinding_host_is_refused_at_the_mcp_endpoint_and_everywhere(live, open_tool):
    response = initialize(live, "evil.example.com")
    assert response.status_code == 400, response.text[:300]
    assert initialize(live, f"evil.example.com:{port_of(live)}", origin=False).status_code == 400
    for path in ("/t/acme/login/", "/t/acme/.well-known/openid-configuration", "/healthz", "/admin/login/"):
        assert httpx.get(live.url + path, headers={"Host": "evil.example.com"}).status_code == 400, path


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "acme.localhost", "127.0.0.2"])
def test_loopback_names_are_served(live, open_tool, host):
    response = initialize(live, f"{host}:{port_of(live)}")
    assert response.status_code == 200, response.text[:300]


def test_public_base_url_host_and_allowed_hosts_are_served(live, open_tool, settings):
    settings.PUBLIC_BASE_URL = "https://platform.example.test"
    settings.DEVELOPMENT_HOSTS = ["extra.example.test", ".wild.example.test"]
    for host in ("platform.example.test", "extra.example.test", "a.wild.example.test"):
        assert initialize(live, host).status_code == 200, host
    assert initialize(live, "other.example.test").status_code == 400


def test_a_tenant_domain_added_at_run_time_is_served(live, open_tool):
    from tenants.models import Domain, Tenant

    domain = f"acme-{uuid.uuid4().hex[:8]}.example.test"
    assert httpx.get(f"{live.url}/healthz", headers={"Host": domain}).status_code == 400
    Domain.objects.create(tenant=Tenant.objects.get(schema_name="acme"), domain=domain, is_primary=False)
    try:
        assert httpx.get(f"{live.url}/healthz", headers={"Host": domain}).status_code == 200  # acme's own
        # any tenant's domain is ours, so the path-prefixed endpoint answers on it too
        assert initialize(live, domain).status_code == 200
    finally:
        Domain.objects.filter(domain=domain).delete()


def test_production_checks_the_host_against_allowed_hosts(live, open_tool, settings):
    settings.DEVELOPMENT_HOSTS = None  # production: Django's ALLOWED_HOSTS alone
    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    assert initialize(live, f"127.0.0.1:{port_of(live)}").status_code == 200
    assert initialize(live, "evil.example.com").status_code == 400
    assert initialize(live, "evil.example.com", origin=False).status_code == 400
