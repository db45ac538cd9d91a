"""The per-tenant authorization server over real HTTP (live server on loopback)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests import oauth_flow as flow
from tests.conftest import refresh_grace_seconds


def test_metadata_documents_in_every_form(live, acme):
    host = live.url
    expected_issuer = f"{host}/t/acme"
    for url in (
        f"{host}/.well-known/oauth-authorization-server/t/acme",
        f"{host}/.well-known/openid-configuration/t/acme",
        f"{host}/t/acme/.well-known/openid-configuration",
        f"{host}/t/acme/.well-known/oauth-authorization-server",
    ):
        response = httpx.get(url, headers={"Origin": "https://chat.example"})
        assert response.status_code == 200, url
        doc = response.json()
        assert doc["issuer"] == expected_issuer, url
        assert doc["authorization_endpoint"] == f"{expected_issuer}/authorize/"
        assert doc["token_endpoint"] == f"{expected_issuer}/token/"
        assert doc["registration_endpoint"] == f"{expected_issuer}/register/"
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert doc["client_id_metadata_document_supported"] is True
        assert doc["authorization_response_iss_parameter_supported"] is True
        assert "crm.read" in doc["scopes_supported"]
        assert "implicit" not in doc["grant_types_supported"] and "password" not in doc["grant_types_supported"]
        assert response.headers["access-control-allow-origin"] == "*"

    for url in (
        f"{host}/.well-known/oauth-protected-resource/t/acme/mcp",
        f"{host}/t/acme/.well-known/oauth-protected-resource/mcp",
    ):
        doc = httpx.get(url).json()
        assert doc["resource"] == f"{host}/t/acme/mcp", url
        assert doc["authorization_servers"] == [expected_issuer]
        assert doc["scopes_supported"] == ["crm.read", "tenant.read"]

    assert httpx.get(f"{host}/.well-known/oauth-authorization-server/t/nosuch").status_code == 404


def test_full_code_flow_with_iss_and_hashed_storage(live, acme):
    client, browser = flow.signed_in(acme, "member@acme.test")
    verifier, challenge = flow.pkce_pair()
    params = flow.redirect_params(browser.authorize(flow.authorize_url(client, scope="crm.read", challenge=challenge)))
    assert params["iss"] == f"{live.url}/t/acme"
    assert params["state"] == "st"
    response = flow.exchange(client, params["code"], verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["expires_in"] == 900 and tokens["scope"] == "crm.read" and tokens["refresh_token"]

    from django.db import connection
    from django_tenants.utils import schema_context

    with schema_context("acme"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT token, resource FROM oauth2_provider_accesstoken WHERE token_checksum = "
            "encode(sha256(%s::bytea), 'hex')",
            [tokens["access_token"]],
        )
        stored, resource = cursor.fetchone()
        assert stored == ""  # hashed storage: no cleartext
        assert json.loads(resource) == [f"{live.url}/t/acme/mcp"]  # audience defaulted to the tenant's MCP resource
        cursor.execute("SELECT count(*) FROM oauth2_provider_accesstoken WHERE token = %s", [tokens["access_token"]])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM oauth2_provider_refreshtoken WHERE token = %s", [tokens["refresh_token"]])
        assert cursor.fetchone()[0] == 0


def _tokens_for(acme: flow.Tenant, email: str = "member@acme.test", scope: str = "crm.read", **reg):
    client, browser = flow.signed_in(acme, email, **reg)
    return client, browser, flow.obtain_tokens(browser, client, scope=scope)


def assert_reuse_kills_family(client, *, reused: dict, latest: dict) -> None:
    """Presenting the spent ``reused`` pair's refresh token is refused, and the family's newest
    refresh token (``latest``'s) dies with it."""
    replay = flow.refresh(client, reused["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert flow.refresh(client, latest["refresh_token"]).json()["error"] == "invalid_grant"


def test_refresh_rotates_and_reuse_revokes_the_family(acme):
    client, _, first = _tokens_for(acme)
    second = flow.refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # the successor is used (so the first token is no longer within a lost-response situation) ...
    third = flow.refresh(client, second["refresh_token"])
    assert third.status_code == 200
    third = third.json()
    # ... then the first one is replayed: that is reuse, and the whole family dies
    assert_reuse_kills_family(client, reused=first, latest=third)


def test_lost_response_retry_gets_the_same_pair_and_the_family_survives(acme):
    client, _, first = _tokens_for(acme)
    lost = flow.refresh(client, first["refresh_token"])  # the client never receives this response
    assert lost.status_code == 200, lost.text
    lost = lost.json()
    for _ in range(2):  # every retry inside the grace window: the same answer, not a fresh pair
        retry = flow.refresh(client, first["refresh_token"])
        assert retry.status_code == 200, retry.text
        retry = retry.json()
        assert (retry["access_token"], retry["refresh_token"]) == (lost["access_token"], lost["refresh_token"])
        assert retry["scope"] == "crm.read" and 0 < retry["expires_in"] <= 900
    # the pair works: its refresh token rotates normally
    onward = flow.refresh(client, lost["refresh_token"])
    assert onward.status_code == 200, onward.text
    onward = onward.json()
    # once the successor has been used, the old token is no longer a lost response: reuse kills the family
    assert_reuse_kills_family(client, reused=first, latest=onward)


def test_a_duplicate_refresh_is_refused_what_the_first_would_be(acme):
    client, _, first = _tokens_for(acme)
    assert flow.refresh(client, first["refresh_token"]).status_code == 200
    stray = flow.refresh(client, first["refresh_token"], resource="https://elsewhere.example/mcp")
    assert stray.status_code == 400 and stray.json()["error"] == "invalid_target"


def test_successor_pair_is_kept_encrypted_and_dropped_with_the_next_rotation(acme):
    from django.db import connection
    from django_tenants.utils import schema_context

    from oauth.models import RefreshSuccessor

    client, _, first = _tokens_for(acme)
    second = flow.refresh(client, first["refresh_token"]).json()
    with schema_context("acme"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.pair, s.token_family FROM platform_oauth_refreshsuccessor s "
            "JOIN oauth2_provider_refreshtoken r ON r.id = s.refresh_token_id "
            "WHERE r.token_checksum = encode(sha256(%s::bytea), 'hex')",
            [first["refresh_token"]],
        )
        stored, family = cursor.fetchone()
    raw = bytes(stored)
    assert second["refresh_token"].encode() not in raw and second["access_token"].encode() not in raw
    flow.refresh(client, second["refresh_token"])  # the successor is used: the kept answer is dropped
    with schema_context("acme"):
        assert RefreshSuccessor.objects.filter(token_family=family).count() == 1  # only the newest


def test_successor_pairs_past_the_grace_window_are_dropped(acme):
    from django_tenants.utils import schema_context

    from oauth.models import RefreshSuccessor

    client, _, first = _tokens_for(acme)
    flow.refresh(client, first["refresh_token"])  # keeps an answer for this family
    with schema_context("acme"):
        kept = RefreshSuccessor.objects.filter(successor__application__client_id=client.client_id).get()
    other, _, tokens = _tokens_for(acme)
    with refresh_grace_seconds(0):
        assert flow.refresh(other, tokens["refresh_token"]).status_code == 200  # any refresh in the tenant
    with schema_context("acme"):
        assert not RefreshSuccessor.objects.filter(pk=kept.pk).exists()


def test_a_kept_pair_that_no_longer_decrypts_is_invalid_grant_not_500(acme):
    from django.db import connection
    from django_tenants.utils import schema_context

    client, _, first = _tokens_for(acme)
    second = flow.refresh(client, first["refresh_token"]).json()
    with schema_context("acme"), connection.cursor() as cursor:  # as if its key left FERNET_KEYS
        cursor.execute(
            "UPDATE platform_oauth_refreshsuccessor SET pair = 'not fernet'::bytea WHERE refresh_token_id = "
            "(SELECT id FROM oauth2_provider_refreshtoken WHERE token_checksum = encode(sha256(%s::bytea), 'hex'))",
            [first["refresh_token"]],
        )
        assert cursor.rowcount == 1
    retry = flow.refresh(client, first["refresh_token"])
    assert retry.status_code == 400 and retry.json()["error"] == "invalid_grant"
    assert flow.refresh(client, second["refresh_token"]).status_code == 200  # not treated as reuse


def test_grace_window_expires(acme, settings):
    client, _, first = _tokens_for(acme)
    flow.refresh(client, first["refresh_token"])
    with refresh_grace_seconds(0):
        late = flow.refresh(client, first["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_authorization_code_replay_revokes_issued_tokens(acme):
    client, browser = flow.signed_in(acme, "member@acme.test")
    code, verifier = flow.authorization_code(browser, client)
    tokens = flow.exchange(client, code, verifier).json()
    replay = flow.exchange(client, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # the tokens minted from that code are gone
    assert flow.refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    from django_tenants.utils import schema_context
    from oauth2_provider.models import AccessToken

    from oauth.validators import checksum

    with schema_context("acme"):
        assert not AccessToken.objects.filter(token_checksum=checksum(tokens["access_token"])).exists()


@pytest.mark.parametrize("verifier", ["wrong", "missing"])
def test_code_replay_without_the_verifier_is_refused_and_revokes_nothing(acme, verifier):
    """Someone holding a spent code and the public client id cannot end the user's session."""
    client, browser = flow.signed_in(acme, "member@acme.test")
    code, right = flow.authorization_code(browser, client)
    tokens = flow.exchange(client, code, right).json()
    extra = {"code_verifier": flow.pkce_pair()[0]} if verifier == "wrong" else {}
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    replay = httpx.post(acme.url("token/"), data={**data, "client_id": client.client_id, **extra}, timeout=20)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # the family is intact: the refresh token still rotates
    assert flow.refresh(client, tokens["refresh_token"]).status_code == 200


def test_code_replay_by_another_client_is_refused_and_revokes_nothing(acme):
    client, browser = flow.signed_in(acme, "member@acme.test")
    other = flow.register(acme)
    code, verifier = flow.authorization_code(browser, client)
    tokens = flow.exchange(client, code, verifier).json()
    replay = flow.exchange(other, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert flow.refresh(client, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"scope": "crm.read no.such.scope"}, "invalid_scope"),
        ({"response_type": "token"}, "unauthorized_client"),
        ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
    ],
)
def test_bad_authorization_requests_get_the_right_error(acme, change, error):
    client, browser = flow.signed_in(acme, "member@acme.test")
    _, challenge = flow.pkce_pair()
    url = flow.authorize_url(client, scope=change.pop("scope", "crm.read"), challenge=challenge)
    from urllib.parse import urlencode

    base, params = url.split("?")[0], flow.query_params(url)
    for key, value in change.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    response = browser.authorize(base + "?" + urlencode(params))
    result = flow.redirect_params(response)
    assert result["error"] == error, result
    assert result["state"] == "st" and result["iss"].endswith("/t/acme")


def test_redirect_uri_mismatch_is_refused_without_redirecting(acme):
    client, browser = flow.signed_in(acme, "member@acme.test")
    _, challenge = flow.pkce_pair()
    url = flow.authorize_url(client, scope="crm.read", challenge=challenge).replace(
        "127.0.0.1%3A9%2Fcallback", "127.0.0.1%3A9%2Fother"
    )
    response = browser.authorize(url)
    assert response.status_code == 400
    assert "<strong>invalid_request</strong>" in response.text and "Mismatching redirect URI" in response.text
    assert "location" not in response.headers
    # and at the token endpoint the redirect_uri must match the one authorized
    code, verifier = flow.authorization_code(browser, client)
    mismatch = flow.exchange(client, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert mismatch.status_code == 400 and mismatch.json()["error"] == "invalid_request"


def test_wrong_pkce_verifier_is_refused(acme):
    client, browser = flow.signed_in(acme, "member@acme.test")
    code, _ = flow.authorization_code(browser, client)
    other_verifier, _ = flow.pkce_pair()
    response = flow.exchange(client, code, other_verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_token_request_for_another_resource_is_refused(acme):
    client, browser = flow.signed_in(acme, "member@acme.test")
    code, verifier = flow.authorization_code(browser, client)
    response = flow.exchange(client, code, verifier, resource="https://elsewhere.example/mcp")
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"


def test_deny_returns_access_denied(acme):
    client, browser = flow.signed_in(acme, "member@acme.test")
    _, challenge = flow.pkce_pair()
    result = flow.redirect_params(
        browser.authorize(flow.authorize_url(client, scope="crm.read", challenge=challenge), allow=False)
    )
    assert result["error"] == "access_denied" and result["iss"].endswith("/t/acme")


def test_only_members_can_authorize(acme):
    client = flow.register(acme)
    outsider = flow.Browser(acme, "member@globex.test")
    response = flow.submit_login(outsider.http, acme.url("login/"), outsider.email, outsider.password)
    assert response.status_code == 200 and "Please enter a correct email and password" in response.text
    _, challenge = flow.pkce_pair()
    redirect = outsider.authorize(flow.authorize_url(client, scope="crm.read", challenge=challenge))
    assert redirect.status_code == 302 and "/t/acme/login/" in redirect.headers["location"]


def test_login_next_is_not_an_open_redirect(acme):
    browser = flow.Browser(acme, "member@acme.test")
    url = acme.url("login/") + "?next=https://evil.example/steal"
    response = flow.submit_login(browser.http, url, browser.email, browser.password)
    assert response.status_code == 302 and "evil.example" not in response.headers["location"]


def test_consent_is_remembered_and_step_up_marks_new_scopes(acme):
    client, browser = flow.signed_in(acme, "admin@acme.test")
    flow.obtain_tokens(browser, client, scope="crm.read")
    _, challenge = flow.pkce_pair()
    # same scopes again: no page, straight back with a code
    again = browser.http.get(flow.authorize_url(client, scope="crm.read", challenge=challenge))
    assert again.status_code == 302 and "code=" in again.headers["location"]
    # step-up: the page shows, crm.write marked new, crm.read not
    page = browser.http.get(flow.authorize_url(client, scope="crm.read crm.write", challenge=challenge))
    assert page.status_code == 200
    assert 'data-scope="crm.write"><code>crm.write</code>' in page.text
    write_item = page.text.split('data-scope="crm.write"')[1].split("</li>")[0]
    read_item = page.text.split('data-scope="crm.read"')[1].split("</li>")[0]
    assert 'class="new"' in write_item and 'class="new"' not in read_item
    assert "Grant additional access" in page.text
    assert "127.0.0.1:9" in page.text and "Test MCP client" in page.text


def test_revocation_and_introspection(acme):
    client, _, tokens = _tokens_for(acme)
    confidential = flow.register(acme, token_endpoint_auth_method="client_secret_basic")
    from django_tenants.utils import schema_context

    from oauth.models import ClientProfile

    with schema_context("acme"):  # introspection is for clients an admin marked as resource servers
        ClientProfile.objects.filter(application__client_id=confidential.client_id).update(is_resource_server=True)
    # a public client may not introspect
    denied = httpx.post(acme.url("introspect/"), data={"token": tokens["access_token"], "client_id": client.client_id})
    assert denied.status_code == 401
    introspected = httpx.post(
        acme.url("introspect/"),
        data={"token": tokens["access_token"]},
        auth=(confidential.client_id, confidential.client_secret),
    )
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    assert introspected.json()["scope"] == "crm.read"
    revoked = httpx.post(
        acme.url("revoke_token/"), data={"token": tokens["access_token"], "client_id": client.client_id}
    )
    assert revoked.status_code == 200
    after = httpx.post(
        acme.url("introspect/"),
        data={"token": tokens["access_token"]},
        auth=(confidential.client_id, confidential.client_secret),
    )
    assert after.json()["active"] is False


# --- registration policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://*.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://127.0.0.1:5555/cb"], "application_type": "web"}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"application_type": "desktop"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ],
)
def test_registration_policy_refusals(acme, metadata, error):
    body = {"client_name": "x", "redirect_uris": ["http://127.0.0.1:1234/cb"], "application_type": "native", **metadata}
    response = httpx.post(acme.url("register/"), json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error


def test_registration_accepts_https_and_loopback_any_port(acme):
    web = flow.register(acme, redirect_uris=["https://chat.example/oauth/callback"], application_type="web")
    native = flow.register(acme, redirect_uris=["http://127.0.0.1:49152/callback", "http://[::1]:1/cb"])
    assert web.client_id and native.client_id and web.client_id != native.client_id


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (["http://127.0.0.1:33418/callback"], "native"),  # TS SDK 1.x, the Inspector: no application_type
        (["http://localhost:6274/oauth/callback"], "native"),
        (["http://[::1]:8080/cb", "https://app.example/cb"], "native"),
        (["https://chatgpt.com/connector_platform_oauth_redirect"], "web"),
    ],
)
def test_registration_infers_application_type_from_redirect_uris(acme, uris, expected):
    from django_tenants.utils import schema_context

    from oauth.models import ClientProfile

    body = {"client_name": "no application_type", "redirect_uris": uris, "token_endpoint_auth_method": "none"}
    response = httpx.post(acme.url("register/"), json=body)
    assert response.status_code == 201, response.text
    assert response.json()["application_type"] == expected
    with schema_context("acme"):
        profile = ClientProfile.objects.get(application__client_id=response.json()["client_id"])
    assert profile.application_type == expected


def test_registration_is_rate_limited(acme, settings):
    from django_tenants.utils import schema_context

    from tenants.ratelimit import reset

    def reset_bucket():  # the suite's earlier registrations count in the same window
        with schema_context("acme"):  # cache keys are tenant-prefixed
            reset("dcr:acme:127.0.0.1", 3600)

    settings.OAUTH_DCR_RATE_LIMIT = (3, 3600)
    reset_bucket()
    codes = [
        httpx.post(
            acme.url("register/"),
            json={
                "redirect_uris": ["http://127.0.0.1:1/cb"],
                "application_type": "native",
                "token_endpoint_auth_method": "none",
            },
        ).status_code
        for _ in range(5)
    ]
    reset_bucket()
    assert codes[:3] == [201, 201, 201] and codes[3:] == [429, 429]


def test_unused_dynamic_clients_expire(acme):
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import schema_context
    from oauth2_provider.models import Application

    from oauth.models import ClientProfile
    from oauth.services import expire_unused_clients

    unused = flow.register(acme)
    used, _, _ = _tokens_for(acme)
    with schema_context("acme"):
        long_ago = timezone.now() - timedelta(days=31)
        ClientProfile.objects.filter(application__client_id=unused.client_id).update(created_at=long_ago)
        ClientProfile.objects.filter(application__client_id=used.client_id).update(created_at=long_ago)
        assert ClientProfile.objects.get(application__client_id=used.client_id).last_used_at is not None
        expire_unused_clients()
        assert not Application.objects.filter(client_id=unused.client_id).exists()
        assert Application.objects.filter(client_id=used.client_id).exists()


def test_cors_preflight_on_token_and_registration(acme):
    for path in ("token/", "register/"):
        response = httpx.options(
            acme.url(path),
            headers={
                "Origin": "https://chat.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert response.status_code == 200, path
        assert response.headers["access-control-allow-origin"] == "*"
    error = httpx.post(
        acme.url("token/"), data={"grant_type": "authorization_code"}, headers={"Origin": "https://chat.example"}
    )
    assert error.status_code == 400 and error.json()["error"] == "invalid_request"
    assert error.headers["access-control-allow-origin"] == "*"


def test_tenant_domain_mode_has_its_own_issuer_and_resource(live, acme):
    from tenants.models import Domain
    from tenants.models import Tenant as TenantModel
    from tests.mcp_raw import call

    # not primary: the row outlives the test, and a primary domain would move acme's canonical URL
    acme_tenant = TenantModel.objects.get(schema_name="acme")
    Domain.objects.get_or_create(domain="acme-domain.test", defaults={"tenant": acme_tenant, "is_primary": False})
    port = live.url.rsplit(":", 1)[1]
    host = f"acme-domain.test:{port}"
    base = f"http://{host}"
    headers = {"Host": host}
    server = httpx.get(f"{live.url}/.well-known/oauth-authorization-server", headers=headers).json()
    assert server["issuer"] == base and server["token_endpoint"] == f"{base}/token/"
    resource = httpx.get(f"{live.url}/.well-known/oauth-protected-resource/mcp", headers=headers).json()
    assert resource["resource"] == f"{base}/mcp" and resource["authorization_servers"] == [base]
    # a token minted for the path-mode resource is not valid at the domain's resource, and vice versa
    _, _, tokens = _tokens_for(acme)
    refused = call(f"{live.url}/mcp", tokens["access_token"], "crm_search_contacts", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith(
        f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp", error="invalid_token"'
    )
    assert call(acme.mcp, tokens["access_token"], "crm_search_contacts").status_code == 200


def test_refresh_token_idle_timeout_and_absolute_lifetime(acme, settings):
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import schema_context
    from oauth2_provider.models import AccessToken, RefreshToken

    from oauth.validators import checksum

    # idle: the refresh token dies OAUTH_REFRESH_TOKEN_IDLE_SECONDS after its access token expired
    client, _, tokens = _tokens_for(acme)
    with schema_context("acme"):
        idle = timedelta(seconds=settings.OAUTH_REFRESH_TOKEN_IDLE_SECONDS + 60)
        AccessToken.objects.filter(token_checksum=checksum(tokens["access_token"])).update(
            expires=timezone.now() - idle
        )
    assert flow.refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"

    # absolute: however active, a family ends OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS after it started
    client, _, tokens = _tokens_for(acme)
    fresh = flow.refresh(client, tokens["refresh_token"]).json()  # an active family: rotated just now
    with schema_context("acme"):
        family = RefreshToken.objects.get(token_checksum=checksum(fresh["refresh_token"])).token_family
        started = timezone.now() - timedelta(seconds=settings.OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS + 60)
        RefreshToken.objects.filter(token_family=family, revoked__isnull=False).update(created=started)
    assert flow.refresh(client, fresh["refresh_token"]).json()["error"] == "invalid_grant"


def test_per_tenant_access_token_lifetime(acme):
    from tenants.models import Tenant as TenantModel

    TenantModel.objects.filter(schema_name="acme").update(access_token_lifetime_seconds=300)
    try:
        _, _, tokens = _tokens_for(acme)
        assert tokens["expires_in"] == 300
    finally:
        TenantModel.objects.filter(schema_name="acme").update(access_token_lifetime_seconds=900)


def test_rate_limits_fail_open_when_redis_does_not_answer(live, acme, settings):
    """A limiter outage is not a token-endpoint outage: with the counter store gone, registration,
    exchange and refresh still answer, and the skipped checks are counted for the operator."""
    import socket

    from tests.observability_helpers import samples, scrape, value

    with socket.socket() as s:  # a port nothing listens on: every Redis call is refused
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    before = samples(scrape(live.url))
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{dead}/0",
        }
    }
    client, _, first = _tokens_for(acme)  # registers (DCR limit), then exchanges a code (token limits)
    second = flow.refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    after = samples(scrape(live.url))
    skipped = {
        limit: value(after, "platform_rate_limit_unavailable_total", tenant="acme", limit=limit)
        - value(before, "platform_rate_limit_unavailable_total", tenant="acme", limit=limit)
        for limit in ("dcr", "token")
    }
    assert skipped == {"dcr": 1, "token": 4}  # one DCR bucket; address and client buckets, twice
