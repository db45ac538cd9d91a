"""The login and consent pages in a real headless browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import pytest

from tests.chromium import chromium_context
from tests.conftest import PASSWORD
from tests.oauth_flow import authorize_url, exchange, pkce_pair, query_params, register

# Chromium refuses "unsafe" ports such as 9 before any routing, so the browser tests use another one.
CALLBACK = "http://127.0.0.1:47123/callback"


@pytest.fixture
def page():
    with chromium_context() as context:
        yield context.new_page()


def test_consent_in_a_real_browser(live, page, tmp_path):
    acme = live.tenant("acme")
    client = register(acme, client_name="Browser Test Client", redirect_uris=[CALLBACK])
    verifier, challenge = pkce_pair()
    url = authorize_url(client, scope="crm.read crm.write", challenge=challenge, state="browser-state")

    captured: list[str] = []
    # the redirect target is a loopback client that is not listening: capture the navigation instead
    page.route(
        f"{CALLBACK}**", lambda route: (captured.append(route.request.url), route.fulfill(status=200, body="done"))
    )
    page.goto(url)
    assert "/t/acme/login/" in page.url  # not signed in: the login page, with next= back to authorize
    page.fill("input[name=username]", "member@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#authorizationForm")
    text = page.inner_text("body")
    assert "Browser Test Client" in text and "Acme Corp" in text and "127.0.0.1:47123" in text
    assert "Create notes and update contacts" in text and "Read contacts and notes" in text
    page.screenshot(path=str(tmp_path / "consent.png"))
    page.click("#allow")
    page.wait_for_url(f"{CALLBACK}**")
    assert captured, "the browser was not sent back to the client"
    query = query_params(captured[0])
    assert query["state"] == "browser-state" and query["iss"] == f"{live.url}/t/acme"
    tokens = exchange(client, query["code"], verifier)
    assert tokens.status_code == 200 and set(tokens.json()["scope"].split()) == {"crm.read", "crm.write"}


def test_deny_in_a_real_browser(live, page):
    acme = live.tenant("acme")
    client = register(acme, redirect_uris=[CALLBACK])
    _, challenge = pkce_pair()
    captured: list[str] = []
    page.route(
        f"{CALLBACK}**", lambda route: (captured.append(route.request.url), route.fulfill(status=200, body="done"))
    )
    page.goto(authorize_url(client, scope="crm.read", challenge=challenge))
    page.fill("input[name=username]", "member@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("#deny")
    page.wait_for_url(f"{CALLBACK}**")
    assert captured and "error=access_denied" in captured[0]
