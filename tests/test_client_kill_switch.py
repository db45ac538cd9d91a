"""The tenant's kill switch for a client (``oauth.client_blocks``): disabled by client id, CIMD host,
``software_id`` or redirect host, over HTTP against the live server: its tokens die at once, it
cannot authorize or refresh again, and registering again does not bring it back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken, Application, RefreshToken

from oauth.client_blocks import disable_client, enable_client, revoke_blocked
from oauth.models import ClientBlock, ConsentGrant
from observability.models import AuthEvent
from tests.admin_http import AdminSession
from tests.conftest import PASSWORD
from tests.mcp_raw import call
from tests.oauth_flow import (
    Browser,
    authorize_url,
    obtain_tokens,
    pkce_pair,
    refresh,
    register,
)


def member(live) -> Browser:
    browser = Browser(live.tenant("globex"), "member@globex.test", PASSWORD)
    browser.login()
    return browser


def works(live, access_token: str) -> int:
    return call(live.tenant("globex").mcp, access_token, "crm_search_contacts", {"query": ""}).status_code


def authorize_answer(browser: Browser, client) -> httpx.Response:
    _, challenge = pkce_pair()
    return browser.http.get(authorize_url(client, scope="crm.read", challenge=challenge))


def test_disabling_by_client_id_revokes_at_once_and_refuses_authorize_and_refresh(live):
    browser = member(live)
    client = register(live.tenant("globex"), client_name="rogue agent")
    bystander = register(live.tenant("globex"), client_name="good agent")
    tokens = obtain_tokens(browser, client, scope="crm.read")
    kept = obtain_tokens(browser, bystander, scope="crm.read")
    assert works(live, tokens["access_token"]) == 200

    admin = AdminSession(live.tenant("globex"), "admin@globex.test", PASSWORD).login()
    with schema_context("globex"):
        pk = Application.objects.get(client_id=client.client_id).pk
    answer = admin.post("oauth2_provider/application/", {"action": "disable_clients", "_selected_action": [pk]})
    assert answer.status_code == 302, answer.text[:500]

    assert works(live, tokens["access_token"]) == 401  # the very next call
    assert refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    refused = authorize_answer(browser, client)
    assert refused.status_code == 400 and "code=" not in refused.headers.get("location", "")
    assert works(live, kept["access_token"]) == 200  # other clients are untouched
    with schema_context("globex"):
        assert not ConsentGrant.objects.filter(application__client_id=client.client_id).exists()
        assert AuthEvent.objects.filter(event="client_disabled", client_id=client.client_id).exists()
        block = ClientBlock.objects.get(kind="client_id", value=client.client_id)
        enable_client(block=block, by_user_id=None)
        assert AuthEvent.objects.filter(event="client_enabled", client_id=client.client_id).exists()
    # enabled again; disabling deleted its consent, so the member is asked again (the consent page)
    assert authorize_answer(browser, client).status_code == 200


def test_disabling_a_software_id_refuses_its_clients_and_their_registrations(live):
    browser = member(live)
    software = f"agent-{uuid.uuid4().hex[:8]}"
    client = register(live.tenant("globex"), client_name="agent", software_id=software)
    tokens = obtain_tokens(browser, client, scope="crm.read")
    with schema_context("globex"):
        _, revoked = disable_client(kind="software_id", value=software, by_user_id=None)
    assert revoked == 2  # its access token and its RFC 7592 registration access token
    assert works(live, tokens["access_token"]) == 401
    again = httpx.post(
        live.tenant_url("globex", "register/"),
        json={"client_name": "agent", "software_id": software, "redirect_uris": ["http://127.0.0.1:9/callback"],
              "token_endpoint_auth_method": "none", "application_type": "native"},
    )  # fmt: skip
    assert again.status_code == 400 and "disabled" in again.json()["error_description"]


def test_disabling_a_redirect_host_refuses_re_registration_with_it(live):
    browser = member(live)
    host = f"agent-{uuid.uuid4().hex[:8]}.example"
    redirect = f"https://{host}/callback"
    client = register(live.tenant("globex"), client_name="web agent", redirect_uris=[redirect], application_type="web")
    _, challenge = pkce_pair()
    assert browser.http.get(authorize_url(client, scope="crm.read", challenge=challenge)).status_code == 200
    with schema_context("globex"):
        disable_client(kind="redirect_host", value=host.upper(), by_user_id=None)
    assert authorize_answer(browser, client).status_code == 400
    again = httpx.post(
        live.tenant_url("globex", "register/"),
        json={"client_name": "renamed", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"},
    )
    assert again.status_code == 400


def test_disabling_a_cimd_host_refuses_every_client_id_on_it(live):
    """A CIMD client (its Application as DOT keeps it after fetching the document) and its tokens."""
    host = f"cimd-{uuid.uuid4().hex[:6]}.example"
    with schema_context("globex"):
        application = Application.objects.create(
            client_id=f"https://{host}/oauth/client.json",
            client_type=Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="http://127.0.0.1:9/callback",
            registration_source=Application.RegistrationSource.CIMD,
            cimd_expires_at=timezone.now() + timedelta(days=1),
            name="CIMD agent",
        )
        from accounts.models import User

        user = User.objects.get(email="member@globex.test")
        AccessToken.objects.create(
            user=user, application=application, token=uuid.uuid4().hex, expires=timezone.now() + timedelta(hours=1)
        )
        _, revoked = disable_client(kind="cimd_host", value=host, by_user_id=None)
        assert revoked == 1 and not AccessToken.objects.filter(application=application).exists()
    client = type("C", (), {"tenant": live.tenant("globex"), "client_id": application.client_id})()
    client.redirect_uri = "http://127.0.0.1:9/callback"
    assert authorize_answer(member(live), client).status_code == 400


def test_the_sweep_revokes_what_a_disabled_client_got_afterwards(live):
    client = register(live.tenant("globex"), client_name="late token")
    with schema_context("globex"):
        disable_client(kind="client_id", value=client.client_id, by_user_id=None)
        from accounts.models import User

        application = Application.objects.get(client_id=client.client_id)
        RefreshToken.objects.create(  # as if a code issued in the instant before the block were exchanged
            user=User.objects.get(email="member@globex.test"), application=application, token=uuid.uuid4().hex
        )
        assert revoke_blocked() == 0
        assert not RefreshToken.objects.filter(application=application, revoked__isnull=True).exists()


def test_the_tenant_admin_adds_and_removes_a_block(live):
    admin = AdminSession(live.tenant("globex"), "admin@globex.test", PASSWORD).login()
    value = f"sw-{uuid.uuid4().hex[:8]}"
    added = admin.post("platform_oauth/clientblock/add/", {"kind": "software_id", "value": value, "reason": "abuse"})
    assert added.status_code == 302, added.text[:1000]
    with schema_context("globex"):
        block = ClientBlock.objects.get(value=value)
        assert block.created_by_id is not None and block.reason == "abuse"
    removed = admin.post(f"platform_oauth/clientblock/{block.pk}/delete/", {"post": "yes"})
    assert removed.status_code == 302
    with schema_context("globex"):
        assert not ClientBlock.objects.filter(value=value).exists()
        assert AuthEvent.objects.filter(event="client_enabled", client_id=value).exists()
