"""The admin in a real browser (the ``page`` fixture of ``tests/conftest.py``): signing in, and
the check that Django's admin stylesheet applied."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.conftest import PASSWORD

HEADER_BG = "rgb(65, 118, 144)"  # Django admin's --header-bg (#417690) in the light theme


def sign_in(page: Page, admin_url: str, email: str) -> None:
    page.goto(admin_url)
    assert "/login/" in page.url
    assert_styled(page)  # the login page too
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def assert_styled(page: Page) -> None:
    header = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
    font = page.eval_on_selector("body", "e => getComputedStyle(e).fontFamily")
    assert header == HEADER_BG, f"{page.url}: header background {header}, the admin stylesheet did not apply"
    assert font.startswith('"Segoe UI"'), f"{page.url}: body font {font}"
    toggle = page.eval_on_selector_all(".theme-toggle svg", "es => es.map(e => e.getBoundingClientRect().width)")
    assert all(width <= 24 for width in toggle), f"{page.url}: theme-toggle icons {toggle}px wide"
    assert "not available" not in page.inner_text("body").lower(), f"{page.url} lists an empty section"
