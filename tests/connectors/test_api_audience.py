"""Platform bearer tokens for the tenant's REST API (a second RFC 8707 resource, ``H/t/<slug>/api``):
its RFC 9728 metadata, issuance for exactly one resource, the exact audience rule both ways (an MCP
token is refused at the API, an API token at /mcp), and the scope checks of the API views."""

from __future__ import annotations

import httpx
import pytest

from tests.mcp_raw import call
from tests.oauth_flow import Tenant, authorize_url, obtain_tokens, pkce_pair, redirect_params, refresh, signed_in

pytestmark = pytest.mark.timeout(90)


def acme(live) -> Tenant:
    return live.tenant("acme")


def api_resource(live) -> str:
    return live.tenant_url("acme", "api")


def tokens_for(live, email: str, scope: str, resource: str | None) -> tuple[dict, object]:
    client, browser = signed_in(acme(live), email)
    extra = {"resource": resource} if resource else {}
    return obtain_tokens(browser, client, scope=scope, **extra), client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_resource_is_advertised_at_its_rfc9728_locations(live):
    for url in (
        f"{live.url}/.well-known/oauth-protected-resource/t/acme/api",
        live.tenant_url("acme", ".well-known/oauth-protected-resource/api"),
    ):
        response = httpx.get(url)
        assert response.status_code == 200, url
        data = response.json()
        assert data["resource"] == api_resource(live)
        assert data["authorization_servers"] == [live.tenant_url("acme").rstrip("/")]
        assert {"connections", "connections.admin", "crm.read"} <= set(data["scopes_supported"])
    mcp = httpx.get(f"{live.url}/.well-known/oauth-protected-resource/t/acme/mcp").json()
    assert mcp["resource"] == live.tenant_url("acme", "mcp")


def test_api_tokens_work_at_the_api_only_and_mcp_tokens_at_mcp_only(live):
    api = live.tenant_url("acme", "api/connections/")
    mcp = live.tenant_url("acme", "mcp")
    api_tokens, client = tokens_for(live, "member@acme.test", "connections crm.read", api_resource(live))
    mcp_tokens, _ = tokens_for(live, "member@acme.test", "connections crm.read", None)

    assert httpx.get(api, headers=bearer(api_tokens["access_token"])).status_code == 200
    contacts = httpx.get(live.tenant_url("acme", "api/crm/contacts"), headers=bearer(api_tokens["access_token"]))
    assert contacts.status_code == 200 and contacts.json()["contacts"]

    refused = httpx.get(api, headers=bearer(mcp_tokens["access_token"]))
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{live.url}/.well-known/oauth-protected-resource/t/acme/api"' in challenge

    at_mcp = call(mcp, api_tokens["access_token"], "crm_search_contacts")
    assert at_mcp.status_code == 401 and 'error="invalid_token"' in at_mcp.headers["www-authenticate"]
    assert call(mcp, mcp_tokens["access_token"], "crm_search_contacts").status_code == 200

    # a refreshed API token keeps its audience
    renewed = refresh(client, api_tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert httpx.get(api, headers=bearer(renewed.json()["access_token"])).status_code == 200
    assert call(mcp, renewed.json()["access_token"], "crm_search_contacts").status_code == 401


def test_no_token_gets_a_challenge_pointing_at_the_api_metadata(live):
    response = httpx.get(live.tenant_url("acme", "api/crm/contacts"))
    assert response.status_code == 401
    assert (
        f'resource_metadata="{live.url}/.well-known/oauth-protected-resource/t/acme/api"'
        in (response.headers["www-authenticate"])
    )


def test_scopes_are_checked_per_api(live):
    resource = api_resource(live)
    crm_only, _ = tokens_for(live, "member@acme.test", "crm.read", resource)
    refused = httpx.get(live.tenant_url("acme", "api/connections/"), headers=bearer(crm_only["access_token"]))
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert 'scope="connections crm.read"' in refused.headers["www-authenticate"]

    connections_only, _ = tokens_for(live, "member@acme.test", "connections", resource)
    crm = httpx.get(live.tenant_url("acme", "api/crm/contacts"), headers=bearer(connections_only["access_token"]))
    assert crm.status_code == 403 and crm.json()["error"] == "insufficient_scope"
    listing = live.tenant_url("acme", "api/connections/")
    member_all = httpx.get(listing, params={"all": "1"}, headers=bearer(connections_only["access_token"]))
    assert member_all.status_code == 403

    admin, _ = tokens_for(live, "admin@acme.test", "connections.admin", resource)
    assert httpx.get(listing, params={"all": "1"}, headers=bearer(admin["access_token"])).status_code == 200
    admin_plain, _ = tokens_for(live, "admin@acme.test", "connections", resource)
    assert httpx.get(listing, params={"all": "1"}, headers=bearer(admin_plain["access_token"])).status_code == 403


@pytest.mark.parametrize("which", ["both", "foreign"])
def test_a_token_names_exactly_one_of_the_tenants_resources(live, which):
    client, browser = signed_in(acme(live), "member@acme.test")
    resources = {
        "both": [live.tenant_url("acme", "mcp"), api_resource(live)],
        "foreign": [live.tenant_url("globex", "api")],
    }[which]
    _, challenge = pkce_pair()
    url = authorize_url(client, scope="crm.read", challenge=challenge)
    url += "".join(f"&resource={httpx.QueryParams({'r': r})['r']}" for r in resources).replace(":", "%3A")
    params = redirect_params(browser.authorize(url))
    assert params.get("error") == "invalid_target", params


def test_tenant_domain_mode_has_its_own_api_resource(live, unique):
    from tenants.models import Domain
    from tenants.models import Tenant as TenantModel

    port = live.url.rsplit(":", 1)[1]
    host = f"api-{unique}.test"
    base = f"http://{host}:{port}"
    domain = Domain.objects.create(domain=host, tenant=TenantModel.objects.get(schema_name="acme"), is_primary=False)
    try:
        headers = {"Host": f"{host}:{port}"}
        metadata = httpx.get(f"{live.url}/.well-known/oauth-protected-resource/api", headers=headers).json()
        assert metadata["resource"] == f"{base}/api" and metadata["authorization_servers"] == [base]
        # a token for the path-mode API is not valid at the domain's API (another resource identifier)
        path_mode, _ = tokens_for(live, "member@acme.test", "crm.read", api_resource(live))
        assert httpx.get(
            live.tenant_url("acme", "api/crm/contacts"), headers=bearer(path_mode["access_token"])
        ).is_success
        refused = httpx.get(f"{live.url}/api/crm/contacts", headers={**headers, **bearer(path_mode["access_token"])})
        assert refused.status_code == 401
        assert (
            f'resource_metadata="{base}/.well-known/oauth-protected-resource/api"'
            in (refused.headers["www-authenticate"])
        )
    finally:
        domain.delete()
