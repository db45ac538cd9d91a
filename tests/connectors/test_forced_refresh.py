""""Refresh now" (``POST .../api/connections/<key>/refresh/``) is a real call to the provider: one per
account every ``CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS``, otherwise 429 with ``Retry-After``.
Counted at the provider, over real HTTP, with concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors.models import ConnectedAccount
from tests.connectors.conftest import ConnectBrowser, account_of, add_oidc_provider

pytestmark = pytest.mark.timeout(90)


def refresh_now(browser: ConnectBrowser, key: str):
    csrf = {"X-CSRFToken": browser.http.cookies["csrftoken"], "Referer": browser.url("api/connections/")}
    return browser.http.post(browser.url(f"api/connections/{key}/refresh/"), headers=csrf)


def test_refresh_now_is_throttled_per_account(live, oidc):
    key = add_oidc_provider(oidc)
    member = ConnectBrowser(live, oidc)
    assert member.connect(key).status_code == 302
    before = oidc.refresh_grants()

    with ThreadPoolExecutor(max_workers=5) as pool:  # a member hammering the button
        answers = list(pool.map(lambda _: refresh_now(member, key), range(5)))
    assert sorted(a.status_code for a in answers) == [200, 429, 429, 429, 429]
    assert oidc.refresh_grants() == before + 1  # one call reached the provider
    limited = next(a for a in answers if a.status_code == 429)
    wait = int(limited.headers["Retry-After"])
    assert 1 <= wait <= settings.CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS
    assert limited.json() == {
        "error": "slow_down",
        "detail": "this account was refreshed moments ago",
        "retry_after": wait,
        "retryable": True,
    }

    # another member's account is not held back by this one
    admin = ConnectBrowser(live, oidc, email="admin@acme.test")
    assert admin.connect(key).status_code == 302
    assert refresh_now(admin, key).status_code == 200
    assert oidc.refresh_grants() == before + 2

    # once the interval is over, the member may again
    account, _ = account_of(key)
    with schema_context("acme"):
        past = timezone.now() - timedelta(seconds=settings.CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS + 1)
        ConnectedAccount.objects.filter(pk=account.pk).update(forced_refresh_at=past)
    assert refresh_now(member, key).status_code == 200
    assert refresh_now(member, key).status_code == 429
    assert oidc.refresh_grants() == before + 3
