"""In a real browser (Debian's chromium, Playwright): signing in through the tenant's identity provider
(npm ``oidc-provider``) on the way to an MCP client's consent page, then the account page ("AI
clients with access"): the client listed with what it can reach, revoked with one click, and the
member's other session signed out."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django_tenants.utils import schema_context

from accounts.models import User
from tests.chromium import chromium_context
from tests.identity.conftest import add_idp, new_account
from tests.mcp_raw import call
from tests.oauth_flow import authorize_url, exchange, pkce_pair, query_params, register

CALLBACK = "http://127.0.0.1:47123/callback"  # not listening: the browser's navigation is captured
DOMAIN = "idp.example"


def _sign_in_and_consent(page, live, idp, key: str, client) -> tuple[str, str]:
    """From the client's authorization URL: login page, "Sign in with ...", the IdP, back to the
    consent page, Allow. Returns the code and the PKCE verifier."""
    verifier, challenge = pkce_pair()
    captured: list[str] = []
    page.route(
        f"{CALLBACK}**", lambda route: (captured.append(route.request.url), route.fulfill(status=200, body="ok"))
    )
    page.goto(authorize_url(client, scope="crm.read connections", challenge=challenge, state="browser"))
    assert "/t/sso_a/login/" in page.url
    page.click(f"button[data-provider='{key}']")
    page.wait_for_selector("#authorizationForm")
    assert "SSO consent" in page.inner_text("#client-name")
    assert page.locator("#account-link").count() == 1  # the consent page links the account page
    page.click("#allow")
    page.wait_for_url(f"{CALLBACK}**")
    params = query_params(captured[0])
    return params["code"], verifier


@pytest.fixture
def connected_account(sso_tenants):
    """A connected account of the signed-in member at a provider of sso_a, made once the user exists."""

    def make(email: str) -> None:
        from connectors.models import ConnectedAccount, Provider

        with schema_context("sso_a"):
            provider, _ = Provider.objects.get_or_create(
                key="crm-upstream",
                defaults={
                    "display_name": "Upstream CRM",
                    "authorization_endpoint": "https://crm.example/authorize",
                    "token_endpoint": "https://crm.example/token",
                    "client_id": "c",
                },
            )
            ConnectedAccount.objects.create(user=User.objects.get(email=email), provider=provider)

    return make


def test_sso_consent_account_page_revoke_and_sessions_in_a_real_browser(live, idp, connected_account, tmp_path):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN], name="Acme Okta")
    account = new_account()
    email = f"{account}@{DOMAIN}"
    client = register(live.tenant("sso_a"), client_name=f"SSO consent {uuid.uuid4().hex[:4]}", redirect_uris=[CALLBACK])
    with chromium_context() as context:
        other_context = context.browser.new_context()  # a second browser profile of the same person
        for ctx in (context, other_context):
            ctx.add_cookies([{"name": "test_account", "value": account, "url": idp.issuer}])
        page = context.new_page()
        page.goto(live.tenant_url("sso_a", "login/"))
        assert page.locator(f"button[data-provider='{key}']").inner_text() == "Sign in with Acme Okta"

        code, verifier = _sign_in_and_consent(page, live, idp, key, client)
        tokens = exchange(client, code, verifier).json()
        mcp = live.tenant("sso_a").mcp
        assert call(mcp, tokens["access_token"], "crm_search_contacts", {"query": ""}).status_code == 200
        outside_the_loop(lambda: connected_account(email))

        # a second browser of the same person, signed in through the IdP too
        other = other_context.new_page()
        other.goto(live.tenant_url("sso_a", "login/"))
        other.click(f"button[data-provider='{key}']")
        other.wait_for_url("**/t/sso_a/account/")

        page.goto(live.tenant_url("sso_a", "connections/"))
        page.click("#account-link")  # the connections page links the account page
        page.wait_for_url("**/t/sso_a/account/")
        card = page.locator(f".client[data-client-id='{client.client_id}']")
        assert card.locator(".client-name").inner_text() == outside_the_loop(lambda: client_name_of(client))
        assert card.locator(".registration").inner_text() == "DCR"
        assert card.locator(".domain").inner_text() == "127.0.0.1"
        assert sorted(card.locator(".scope").all_inner_texts()) == ["connections", "crm.read"]
        assert card.locator(".connected").all_inner_texts() == ["Upstream CRM"]
        assert page.locator(".session").count() == 2
        page.screenshot(path=str(tmp_path / "account.png"), full_page=True)

        card.locator("button.revoke").click()
        page.wait_for_selector("#notice")
        assert page.locator(f".client[data-client-id='{client.client_id}']").count() == 0
        refused = call(mcp, tokens["access_token"], "crm_search_contacts", {"query": ""})
        assert refused.status_code == 401  # the family is revoked at once

        # consent is asked again next time
        _, challenge = pkce_pair()
        page.goto(authorize_url(client, scope="crm.read", challenge=challenge))
        page.wait_for_selector("#authorizationForm")

        page.goto(live.tenant_url("sso_a", "account/"))
        page.locator(".session button.sign-out").click()
        page.wait_for_selector("#notice")
        assert page.locator(".session").count() == 1
        other.goto(live.tenant_url("sso_a", "account/"))
        assert "/t/sso_a/login/" in other.url  # the other browser is signed out


def outside_the_loop(work):
    """Database work while Playwright's sync API runs its event loop in this thread (Django refuses
    ORM calls there): done in a worker thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def client_name_of(client) -> str:
    from oauth2_provider.models import Application

    with schema_context("sso_a"):
        return Application.objects.get(client_id=client.client_id).name


def test_the_account_page_is_the_signed_in_members_own(live, sso_tenants):
    import httpx

    from tests.conftest import PASSWORD
    from tests.oauth_flow import Browser, obtain_tokens

    anonymous = httpx.get(live.tenant_url("sso_a", "account/"))
    assert anonymous.status_code == 302 and "/t/sso_a/login/" in anonymous.headers["location"]
    owner = Browser(live.tenant("sso_a"), "admin@sso-a.test", PASSWORD)
    owner.login()
    client = register(live.tenant("sso_a"), client_name="the admin's agent")
    tokens = obtain_tokens(owner, client, scope="crm.read")
    with schema_context("sso_a"):
        from oauth2_provider.models import Application

        application_id = Application.objects.get(client_id=client.client_id).pk
    other = Browser(live.tenant("sso_a"), "member@sso-a.test", PASSWORD)
    other.login()
    page = other.http.get(live.tenant_url("sso_a", "account/"))
    assert page.status_code == 200 and client.client_id not in page.text
    token = other.http.cookies["csrftoken"]
    url = live.tenant_url("sso_a", f"account/clients/{application_id}/revoke/")
    assert other.http.post(url, data={"csrfmiddlewaretoken": token}, headers={"Referer": url}).status_code == 404
    assert call(live.tenant("sso_a").mcp, tokens["access_token"], "crm_search_contacts", {}).status_code == 200
    elsewhere = Browser(live.tenant("acme"), "member@acme.test", PASSWORD)
    elsewhere.login()
    assert elsewhere.http.get(live.tenant_url("sso_a", "account/")).status_code == 302  # no session at sso_a
