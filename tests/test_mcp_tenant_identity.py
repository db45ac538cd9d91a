"""Routing skips its tenant query on /mcp (tenants.routing: a bounded cache of tenant identity)
and the endpoint confirms the tenant itself. Whatever the cache holds, a deactivated tenant is refused
at the very next request on every kind of MCP answer, and the cache stays bounded."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from django.core.management import call_command

from tenants.models import Tenant
from tenants.routing import TenantIdentityCache, identities

PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})


def _post(client, body: str, slug: str = "globex", **extra):
    return client.post(f"/t/{slug}/mcp", data=body, content_type="application/json", **extra)


def _warm(client) -> None:
    """One request fills the cache entry of globex (the next /mcp request is routed without a query)."""
    identities.discard("globex")
    _post(client, PING, HTTP_MCP_PROTOCOL_VERSION="2025-11-25")
    assert identities.get("globex") == Tenant.objects.get(schema_name="globex").pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    "request_kind",
    ["no token", "bearer token", "not json", "wrong content type", "GET", "notification", "preflight"],
)
def test_deactivated_tenant_refused_on_every_mcp_answer_with_a_warm_cache(client, request_kind):
    _warm(client)
    call_command("tenant_deactivate", "globex", stdout=io.StringIO())
    if request_kind == "no token":
        response = _post(client, PING)
    elif request_kind == "bearer token":
        response = _post(client, PING, HTTP_AUTHORIZATION="Bearer not-a-real-token")
    elif request_kind == "not json":
        response = _post(client, "{", HTTP_AUTHORIZATION="Bearer x")
    elif request_kind == "wrong content type":
        response = client.post("/t/globex/mcp", data=PING, content_type="text/plain")
    elif request_kind == "GET":
        response = client.get("/t/globex/mcp")
    elif request_kind == "notification":
        response = _post(client, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    else:
        response = client.options(
            "/t/globex/mcp", HTTP_ORIGIN="https://claude.ai", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
    assert response.status_code == 403, (request_kind, response.content[:200])
    assert response.json()["class"] == "TENANT_INACTIVE"


def test_a_cached_slug_whose_tenant_is_gone_is_unknown_and_forgotten(live):
    """The tenant deleted, schema and all, since routing cached it (no schema: the bearer statement's
    tables do not exist either). A real server: the request runs in autocommit, as in production."""
    url = f"{live.url}/t/nosuchtenant/mcp"
    headers = {"Content-Type": "application/json"}
    for token in ({"Authorization": "Bearer x"}, {}):
        identities.put("nosuchtenant", 987654321)
        response = httpx.post(url, content=PING, headers={**headers, **token})
        assert response.status_code == 404, response.text[:200]
        assert identities.get("nosuchtenant") is None
    assert httpx.post(url, content=PING, headers=headers).status_code == 404  # not cached: routing's query
    assert identities.get("nosuchtenant") is None


@pytest.mark.django_db
def test_a_stale_pk_is_replaced_by_the_fresh_row(client):
    _warm(client)
    real = identities.get("globex")
    identities.put("globex", real + 100000)  # the tenant deleted and created again under the same slug
    response = _post(client, PING, HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert response.status_code == 401  # routed to globex as it is now; the token is what is refused
    assert identities.get("globex") == real


def test_identity_cache_is_bounded_least_recently_used_out():
    cache = TenantIdentityCache(size=100)
    for i in range(5000):
        cache.put(f"t{i}", i)
        if i % 10 == 0:
            assert cache.get("t0") == 0  # kept warm: never the least recently used
    assert len(cache) == 100
    assert cache.get("t0") == 0 and cache.get("t4999") == 4999 and cache.get("t1") is None


@pytest.mark.django_db
def test_https_redirect_before_the_endpoint_still_checks_the_tenant_first(client, settings):
    """SecurityMiddleware answers plain HTTP before the endpoint: routing then makes the check itself."""
    settings.SECURE_SSL_REDIRECT = True
    _warm(client)
    assert _post(client, PING).status_code == 301
    call_command("tenant_deactivate", "globex", stdout=io.StringIO())
    response = _post(client, PING)
    assert response.status_code == 403 and response.json()["class"] == "TENANT_INACTIVE"
