"""The tenant admin's provider form in a real browser (chromium): moving a provider's endpoints needs
the client secret again (the error shows on that field), an endpoint on another origin is refused on
its own field, a saved move says the members must connect again and revokes their grants at the old
provider, and deleting the provider removes it from the list."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django_tenants.utils import schema_context
from playwright.sync_api import Page

from connectors.models import Provider
from tests.connectors.conftest import CLIENT_SECRET, ConnectBrowser, account_of, add_oidc_provider
from tests.support.admin_browser import assert_styled, sign_in

pytestmark = pytest.mark.timeout(150)


def off_loop(work):
    """Run ``work`` (database reads) outside Playwright's event loop, where Django allows them."""

    def run():
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def connected(live, oidc):
    """A provider at the test server and the member's account there (made before the browser starts)."""
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    account, credential = account_of(key)
    return key, account.provider_id, credential


def save(browser_page: Page) -> None:
    browser_page.click("input[name=_save]")
    browser_page.wait_for_load_state()


def field_error(browser_page: Page, name: str) -> str:
    found = browser_page.query_selector(f".field-{name} .errorlist")
    return found.inner_text() if found else ""


def test_moving_and_deleting_a_provider_in_the_admin(live, oidc, other_oidc, connected, page, tmp_path):
    key, provider_id, credential = connected
    change = live.tenant_url("acme", f"admin/connectors/provider/{provider_id}/change/")
    sign_in(page, change, "admin@acme.test")
    page.wait_for_selector("#provider_form")
    assert_styled(page)
    assert page.input_value("#id_client_secret") == ""  # write-only: never rendered

    page.fill("#id_token_endpoint", f"{other_oidc.issuer}/token")
    save(page)
    assert "[client_secret_required_for_change]" in field_error(page, "client_secret")
    page.screenshot(path=str(tmp_path / "secret-required.png"), full_page=True)

    page.fill("#id_token_endpoint", f"{oidc.issuer}/token")
    page.fill("#id_userinfo_endpoint", f"{other_oidc.issuer}/me")
    page.fill("#id_client_secret", CLIENT_SECRET)
    save(page)
    assert "[cross_origin_endpoint]" in field_error(page, "userinfo_endpoint")
    assert field_error(page, "client_secret") == ""
    page.screenshot(path=str(tmp_path / "cross-origin.png"), full_page=True)

    for name, path in (
        ("issuer", ""),
        ("authorization_endpoint", "/auth"),
        ("token_endpoint", "/token"),
        ("revocation_endpoint", "/token/revocation"),
        ("userinfo_endpoint", "/me"),
    ):
        page.fill(f"#id_{name}", other_oidc.issuer + path)
    page.fill("#id_client_secret", CLIENT_SECRET)
    save(page)
    messages = page.inner_text("ul.messagelist")
    assert "1 connected account(s) must connect again" in messages, messages
    page.screenshot(path=str(tmp_path / "moved.png"), full_page=True)
    account, gone = off_loop(lambda: account_of(key))
    assert (account.status, account.status_reason, gone) == ("needs_reauth", "provider_changed", None)
    assert oidc.introspect(credential.refresh_token)["active"] is False  # revoked at the old provider

    page.goto(change)
    page.click("a.deletelink")
    page.click("input[type=submit]")  # "Yes, I'm sure"
    page.wait_for_selector("ul.messagelist")
    assert f"provider {key!r} deleted" in page.inner_text("ul.messagelist").lower()
    assert f"/provider/{provider_id}/change/" not in page.content()
    page.screenshot(path=str(tmp_path / "deleted.png"), full_page=True)
    # nothing was left to revoke: removed at once, not only hidden
    assert off_loop(lambda: provider_rows(provider_id)) == 0


def provider_rows(provider_id: int) -> int:
    with schema_context("acme"):
        return Provider.all_objects.filter(pk=provider_id).count()
