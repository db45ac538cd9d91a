"""Clients under one policy, however they arrive: RFC 7591
registration, RFC 7592 update and Client ID Metadata Documents; the challenge channel chosen from
the platform's rule table; introspection for resource servers only. Over real HTTP against the live
test server."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken, Application

from oauth.models import ClientProfile
from oauth.shared.models import ChallengeChannelRule
from tests.conftest import DocumentServer
from tests.factories import application
from tests.oauth_flow import (
    REDIRECT_URI,
    Browser,
    Client,
    Tenant,
    authorize_url,
    obtain_tokens,
    pkce_pair,
    signed_in_browser,
)
from tests.support.mcp import assert_tool_result_challenge

CHATGPT_REDIRECT = "https://chatgpt.com/connector_platform_oauth_redirect"


def post_register(tenant: Tenant, **metadata) -> httpx.Response:
    body = {"client_name": "policy test", "token_endpoint_auth_method": "none", **metadata}
    return httpx.post(tenant.url("register/"), json=body, timeout=20)


def registered(tenant: Tenant, **metadata) -> tuple[Client, dict]:
    response = post_register(tenant, **metadata)
    assert response.status_code == 201, response.text
    data = response.json()
    return Client(tenant, data["client_id"], data.get("client_secret"), data["redirect_uris"][0]), data


def profile_of(client_id: str) -> ClientProfile:
    with schema_context("acme"):
        return ClientProfile.objects.get(application__client_id=client_id)


def member_browser(tenant: Tenant) -> Browser:
    browser = signed_in_browser(tenant, "member@acme.test")
    return browser


# --- registration refusals -------------------------------------------------------------------------


LOOP = '"redirect_uris": ["http://127.0.0.1:1/cb"]'


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        # a non-string inside grant_types was a TypeError (500)
        ("{" + LOOP + ', "grant_types": [{"a": 1}]}', "invalid_client_metadata"),
        ("{" + LOOP + ', "grant_types": ["authorization_code", 5]}', "invalid_client_metadata"),
        ("{" + LOOP + ', "response_types": [["code"]]}', "invalid_client_metadata"),
        # NUL and lone surrogates in client_name or a redirect URI
        ("{" + LOOP + ', "client_name": "a\\u0000b"}', "invalid_client_metadata"),
        ("{" + LOOP + ', "client_name": "a\\ud800b"}', "invalid_client_metadata"),
        ('{"redirect_uris": ["http://127.0.0.1:1/c\\u0000b"]}', "invalid_redirect_uri"),
        ('{"redirect_uris": ["https://app.example/\\udfffcb"]}', "invalid_redirect_uri"),
        ("{" + LOOP + ', "software_id": "\\u0000"}', "invalid_client_metadata"),
        # accepted with 201 before
        ('{"redirect_uris": ["http://127.0.0.1:70000/cb"]}', "invalid_redirect_uri"),
        ('{"redirect_uris": ["https://app.example:65536/cb"]}', "invalid_redirect_uri"),
        ('{"redirect_uris": ["https://app.example:0/cb"]}', "invalid_redirect_uri"),
        ("{" + LOOP + ', "scope": ["crm.read"]}', "invalid_client_metadata"),
        # DOT stores redirect URIs space-joined and splits on whitespace
        ('{"redirect_uris": ["https://a.example/cb http://evil.example/cb"]}', "invalid_redirect_uri"),
        ('{"redirect_uris": ["https://a.example/cb\\thttps://b.example/cb"]}', "invalid_redirect_uri"),
        ('{"redirect_uris": ["https://a.example/cb\\u2003x"]}', "invalid_redirect_uri"),
        ('{"redirect_uris": ["https://user@a.example/cb"]}', "invalid_redirect_uri"),
        ("{" + LOOP + ', "client_name": 7}', "invalid_client_metadata"),
        ("{" + LOOP + ', "mcp_challenge_channel": "smoke"}', "invalid_client_metadata"),
        ("{" + LOOP + ', "grant_types": ["client_credentials"]}', "invalid_client_metadata"),
        ("[" * 5000 + "]" * 5000, "invalid_client_metadata"),  # RecursionError before
        ('{"redirect_uris": ' + "[" * 100 + "]" * 100 + "}", "invalid_redirect_uri"),
    ],
)
def test_registration_refusals_are_400_with_rfc7591_codes(acme, raw, error):
    response = httpx.post(
        acme.url("register/"), content=raw.encode(), headers={"Content-Type": "application/json"}, timeout=20
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error


def test_refused_registration_creates_nothing(acme, unique):
    response = post_register(acme, client_name=f"refused {unique}", redirect_uris=["http://127.0.0.1:70000/cb"])
    assert response.status_code == 400
    with schema_context("acme"):
        assert not Application.objects.filter(name=f"refused {unique}").exists()


# --- the challenge channel from the rule table -----------------------------------------------------


def test_chatgpt_registration_gets_the_tool_result_channel_and_its_challenge(live, acme):
    client, body = registered(
        acme, redirect_uris=[CHATGPT_REDIRECT], grant_types=["authorization_code", "refresh_token"]
    )
    assert body["application_type"] == "web"
    profile = profile_of(client.client_id)
    assert profile.challenge_channel == "tool_result" and profile.application_type == "web"
    tokens = obtain_tokens(member_browser(acme), client, scope="crm.read")
    assert_tool_result_challenge(live, tokens["access_token"])


@pytest.mark.parametrize(
    ("redirect", "expected"),
    [
        ("https://chat.openai.com/aip/g-123/oauth/callback", "tool_result"),
        ("https://openai.com/cb", "tool_result"),
        ("https://notchatgpt.com/cb", "http"),
        ("https://chatgpt.com.evil.example/cb", "http"),
        ("https://claude.ai/api/mcp/auth_callback", "http"),
    ],
)
def test_default_rules_match_openai_hosts_only(acme, redirect, expected):
    client, _ = registered(acme, redirect_uris=[redirect])
    assert profile_of(client.client_id).challenge_channel == expected


def test_explicit_metadata_field_wins_over_the_rule(acme):
    client, _ = registered(acme, redirect_uris=[CHATGPT_REDIRECT], mcp_challenge_channel="http")
    assert profile_of(client.client_id).challenge_channel == "http"
    client, _ = registered(acme, redirect_uris=["https://app.example/cb"], mcp_challenge_channel="tool_result")
    assert profile_of(client.client_id).challenge_channel == "tool_result"


@pytest.fixture
def rule(live):
    created = []

    def make(**fields) -> ChallengeChannelRule:
        with schema_context("public"):
            rule = ChallengeChannelRule(**fields)
            rule.full_clean()
            rule.save()
        created.append(rule.pk)
        return rule

    yield make
    with schema_context("public"):
        ChallengeChannelRule.objects.filter(pk__in=created).delete()


def test_software_id_rule_and_priority(acme, rule, unique):
    rule(match_on="software_id", pattern=f"agent-{unique}", channel="tool_result")
    client, _ = registered(acme, redirect_uris=["https://app.example/cb"], software_id=f"agent-{unique}")
    assert profile_of(client.client_id).challenge_channel == "tool_result"
    other, _ = registered(acme, redirect_uris=["https://app.example/cb"], software_id=f"agent-{unique}-2")
    assert profile_of(other.client_id).challenge_channel == "http"
    # a higher-priority rule sending this OpenAI host to http wins over the default rule
    rule(match_on="redirect_uri_host", pattern=f"{unique}.chatgpt.com", channel="http", priority=1)
    pinned, _ = registered(acme, redirect_uris=[f"https://{unique}.chatgpt.com/cb"])
    assert profile_of(pinned.client_id).challenge_channel == "http"


@pytest.mark.django_db
def test_rule_patterns_are_validated():
    from django.core.exceptions import ValidationError

    for bad in ("https://chatgpt.com", "chatgpt.com/cb", "*.openai.com", "", "localhost"):
        with pytest.raises(ValidationError):
            ChallengeChannelRule(match_on="redirect_uri_host", pattern=bad, channel="tool_result").full_clean()
    good = ChallengeChannelRule(match_on="client_id_host", pattern=" .Agent.Example ", channel="tool_result")
    good.full_clean()
    assert good.pattern == ".agent.example"
    duplicate = ChallengeChannelRule(match_on="client_id_host", pattern=".chatgpt.com", channel="http")
    with pytest.raises(ValidationError):  # the default rule exists already
        duplicate.full_clean()


@pytest.mark.django_db
def test_rule_table_is_in_the_platform_admin_and_the_flag_in_the_tenant_admin(client, django_user_model):
    from django.contrib import admin

    from tests.conftest import PASSWORD

    assert admin.site.is_registered(ChallengeChannelRule)
    django_user_model.objects.create_superuser("root-rules@x.test", PASSWORD)
    client.post("/admin/login/", {"username": "root-rules@x.test", "password": PASSWORD})
    page = client.get("/admin/oauth_shared/challengechannelrule/")
    assert page.status_code == 200 and ".chatgpt.com" in page.content.decode()

    client.post("/t/acme/admin/login/", {"username": "admin@acme.test", "password": PASSWORD})
    with schema_context("acme"):
        app = application("rs", client_type="confidential", profile=True, redirect_uris="https://rs.example/cb")
    page = client.get(f"/t/acme/admin/oauth2_provider/application/{app.pk}/change/")
    assert page.status_code == 200 and 'name="profile-0-is_resource_server"' in page.content.decode()


# --- CIMD clients are first-class ------------------------------------------------------------------


def cimd_client(
    settings, server: DocumentServer, tenant: Tenant, path: str, host: str = "chatgpt.com", **document
) -> Client:
    """A client whose metadata document is served on loopback (the test-only CIMD allowance maps the
    https client_id host to it)."""
    server.cache_control = "max-age=600"
    origin, documents = server.url, server.documents
    client_id = f"https://{host}/{path}"
    documents[f"/{path}"] = json.dumps(
        {
            "client_id": client_id,
            "client_name": "CIMD policy client",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **document,
        }
    ).encode()
    settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS = {host: origin}
    return Client(tenant, client_id, None, document.get("redirect_uris", [REDIRECT_URI])[0])


def test_cimd_client_gets_a_profile_channel_from_the_rule_and_expires(
    live,
    acme,
    settings,
    document_server,
    unique,
):
    from oauth.services import expire_unused_clients

    client = cimd_client(settings, document_server, acme, f"cimd/{unique}.json")
    tokens = obtain_tokens(member_browser(acme), client, scope="crm.read")
    with schema_context("acme"):
        app = Application.objects.get(client_id=client.client_id)
        assert app.registration_source == "cimd"
    profile = profile_of(client.client_id)
    # loopback redirect, no application_type in the document: inferred native, as for DCR
    assert profile.application_type == "native"
    # client_id on chatgpt.com: the default rule gives the tool-result channel
    assert profile.challenge_channel == "tool_result"
    assert profile.last_used_at is not None
    assert_tool_result_challenge(live, tokens["access_token"])

    with schema_context("acme"):
        long_ago = timezone.now() - timedelta(days=31)
        ClientProfile.objects.filter(application=app).update(created_at=long_ago, last_used_at=long_ago)
        expire_unused_clients()
        assert Application.objects.filter(client_id=client.client_id).exists()  # a live token still holds it
        AccessToken.objects.filter(application=app).update(expires=timezone.now() - timedelta(seconds=1))
        expire_unused_clients()
        assert not Application.objects.filter(client_id=client.client_id).exists()


def test_cimd_explicit_field_wins_and_software_id_is_kept(
    live,
    acme,
    settings,
    document_server,
    unique,
):
    client = cimd_client(
        settings, document_server, acme, f"cimd/{unique}.json", mcp_challenge_channel="http", software_id="sw-1"
    )
    obtain_tokens(member_browser(acme), client, scope="crm.read")
    profile = profile_of(client.client_id)
    assert profile.challenge_channel == "http" and profile.software_id == "sw-1"


@pytest.mark.parametrize(
    "document",
    [
        {"redirect_uris": ["http://evil.example/cb"]},
        {"redirect_uris": [REDIRECT_URI], "application_type": "web"},  # loopback is for native clients
        {"redirect_uris": ["https://a.example/cb http://evil.example/cb"]},
        {"redirect_uris": ["https://u:p@a.example/cb"]},
        {"redirect_uris": ["http://127.0.0.1:70000/cb"]},
        {"redirect_uris": [REDIRECT_URI], "client_name": "a\u0000b"},
    ],
)
def test_cimd_documents_pass_the_redirect_policy(
    live,
    acme,
    settings,
    document_server,
    unique,
    document,
):
    host = f"c-{unique}.example.test"
    client = cimd_client(settings, document_server, acme, f"cimd/{unique}.json", host=host, **document)
    browser = member_browser(acme)
    _verifier, challenge = pkce_pair()
    response = browser.authorize(authorize_url(client, scope="crm.read", challenge=challenge))
    assert response.status_code == 400, (response.status_code, response.headers.get("location"))
    assert "location" not in response.headers
    with schema_context("acme"):
        assert not Application.objects.filter(client_id=client.client_id).exists()


# --- the JWT bearer grant (ID-JAGs): registered only where the caller allows it ---------------------


def test_the_jwt_bearer_grant_is_registered_only_where_allowed():
    from oauth.client_policy import ClientMetadataError, check_client_metadata
    from oauth.grant_types import JWT_BEARER

    metadata = {"redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code", "refresh_token", JWT_BEARER]}
    with pytest.raises(ClientMetadataError, match="ID-JAG"):
        check_client_metadata(metadata)  # DCR, not allowed (a public client, or no IdP trusted)
    assert check_client_metadata(metadata, jwt_bearer_allowed=True).jwt_bearer
    assert check_client_metadata(metadata, document=True).jwt_bearer  # a CIMD document: recorded
    assert not check_client_metadata({"redirect_uris": [REDIRECT_URI]}, jwt_bearer_allowed=True).jwt_bearer
    for other in (["authorization_code", JWT_BEARER, "client_credentials"], [JWT_BEARER]):
        with pytest.raises(ClientMetadataError):
            check_client_metadata({**metadata, "grant_types": other}, jwt_bearer_allowed=True)


# --- RFC 7592 update under the same policy ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://user:pw@app.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example/cb http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"),
        ({"client_name": "a\u0000"}, "invalid_client_metadata"),
    ],
)
def test_rfc7592_update_applies_the_registration_policy(acme, change, error):
    client, data = registered(acme, redirect_uris=["https://app.example/cb"])
    body = {"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none", **change}
    response = httpx.put(
        data["registration_client_uri"],
        content=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {data['registration_access_token']}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    with schema_context("acme"):
        app = Application.objects.get(client_id=client.client_id)
        assert app.redirect_uris == "https://app.example/cb" and app.client_type == "public"


def test_rfc7592_update_accepted_updates_profile_and_keeps_the_channel(acme):
    client, data = registered(acme, redirect_uris=[CHATGPT_REDIRECT])
    assert profile_of(client.client_id).challenge_channel == "tool_result"
    with schema_context("acme"):  # an admin pins the channel
        ClientProfile.objects.filter(application__client_id=client.client_id).update(challenge_channel="http")
    unauthenticated = httpx.put(data["registration_client_uri"], json={"redirect_uris": ["http://evil.example/cb"]})
    assert unauthenticated.status_code == 401
    response = httpx.put(
        data["registration_client_uri"],
        json={"redirect_uris": ["http://127.0.0.1:4242/cb"], "token_endpoint_auth_method": "none"},
        headers={"Authorization": f"Bearer {data['registration_access_token']}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["application_type"] == "native"
    profile = profile_of(client.client_id)
    assert profile.application_type == "native" and profile.challenge_channel == "http"
    with schema_context("acme"):
        assert Application.objects.get(client_id=client.client_id).redirect_uris == "http://127.0.0.1:4242/cb"


# --- introspection for resource servers only -------------------------------------------------------


def test_introspection_only_for_clients_marked_as_resource_servers(acme):
    public, _ = registered(acme, redirect_uris=[REDIRECT_URI])
    tokens = obtain_tokens(member_browser(acme), public, scope="crm.read")
    confidential, _ = registered(
        acme, redirect_uris=["https://rs.example/cb"], token_endpoint_auth_method="client_secret_basic"
    )
    assert confidential.client_secret

    def introspect() -> httpx.Response:
        return httpx.post(
            acme.url("introspect/"),
            data={"token": tokens["access_token"]},
            auth=(confidential.client_id, confidential.client_secret),
        )

    refused = introspect()
    assert refused.status_code == 403 and refused.json()["error"] == "unauthorized_client"
    assert "active" not in refused.json()
    with schema_context("acme"):  # what the tenant admin's checkbox does
        ClientProfile.objects.filter(application__client_id=confidential.client_id).update(is_resource_server=True)
    allowed = introspect()
    assert allowed.status_code == 200 and allowed.json()["active"] is True
    assert allowed.json()["scope"] == "crm.read"
    wrong_secret = httpx.post(
        acme.url("introspect/"), data={"token": tokens["access_token"]}, auth=(confidential.client_id, "nope")
    )
    assert wrong_secret.status_code == 401
