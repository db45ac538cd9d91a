"""The connect pages in a real headless browser (Debian's chromium via Playwright) against the npm
oidc-provider: sign in, connect, see the account; the denial error page; disconnect."""

from __future__ import annotations

import pytest

from tests.chromium import chromium_context
from tests.conftest import PASSWORD
from tests.connectors.conftest import add_oidc_provider

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def provider_key(live, oidc) -> str:
    """Created before the browser starts: Playwright's sync API runs an event loop, and Django refuses
    ORM calls while one runs in the thread."""
    return add_oidc_provider(oidc)


@pytest.fixture
def browser_context():
    with chromium_context() as context:
        yield context


def test_connect_deny_and_disconnect_in_a_real_browser(live, oidc, provider_key, browser_context):
    key = provider_key
    page = browser_context.new_page()
    page.goto(live.tenant_url("acme", "connections/"))
    assert "/t/acme/login/" in page.url  # members only
    page.fill("input[name=username]", "member@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    card = page.locator(f'[data-provider="{key}"]')
    assert card.locator(".status").get_attribute("data-status") == "none"

    card.get_by_role("button", name="Connect").click()
    assert page.locator("h1").inner_text() == "Connect Test OIDC"
    assert "offline_access" in page.locator("ul.scopes").inner_text()
    page.click("#connect")  # to the provider and back (its login and consent answer headlessly)
    page.wait_for_selector("#notice")
    assert page.locator("#notice").inner_text() == f"connected:{key}"
    card = page.locator(f'[data-provider="{key}"]')
    assert card.locator(".status").get_attribute("data-status") == "active"
    assert "alice@oidc.example" in card.inner_text()

    browser_context.add_cookies([{"name": "test_deny", "value": "1", "url": oidc.issuer}])
    card.get_by_role("button", name="Reconnect").click()
    page.click("#connect")
    page.wait_for_selector("#error-code")
    assert page.locator("#error-code").inner_text() == "access_denied"
    assert "declined" in page.locator(".errors").inner_text()

    page.goto(live.tenant_url("acme", "connections/"))
    page.locator(f'[data-provider="{key}"]').get_by_role("button", name="Disconnect").click()
    page.wait_for_selector("#notice")
    assert page.locator(f'[data-provider="{key}"] .status').get_attribute("data-status") == "revoked"
