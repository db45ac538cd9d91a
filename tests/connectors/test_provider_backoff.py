"""Provider-wide backoff (``connectors.breaker``) against the npm oidc-provider, counted at the
provider: a provider answering 429 with ``Retry-After: 60`` gets a handful of refresh attempts in
150 s, not one per tool call and job run; a single probe when the open time is over; the accounts the
breaker kept back are spread over time when it closes; time with the breaker open does not send
accounts to ``needs_reauth``; other providers are unaffected. Time moves on the connectors' clock."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import clock, tokens
from connectors.errors import ProviderUnavailable
from connectors.health_panels import provider_health
from connectors.models import ConnectedAccount, ProviderBreaker
from connectors.tasks import refresh_expiring_in_tenant
from tests.conftest import PASSWORD
from tests.connectors.conftest import CLIENT_ID, RATE_LIMITED_CLIENT, ConnectBrowser, add_oidc_provider
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, signed_in
from tests.observability_helpers import samples, scrape, value
from tests.support.connectors import bulk_accounts, park_other_due_accounts

pytestmark = pytest.mark.timeout(240)


def connected_expired(live, oidc, unique: str, *, client_id: str, name: str) -> tuple[str, ConnectedAccount]:
    key = add_oidc_provider(oidc, client_id=client_id)
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_account=f"{name}-{unique}")
    assert browser.connect(key).status_code == 302
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key, user__email="member@acme.test")
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return key, account


def test_a_rate_limiting_provider_gets_a_handful_of_attempts_in_150_seconds(live, oidc, unique):
    """One account, a tool call every 10 s and the job every minute for 150 s; the provider answers
    every refresh with 429 and Retry-After: 60. Another provider of the tenant keeps working."""
    park_other_due_accounts("acme")
    limited, _ = connected_expired(live, oidc, unique, client_id=RATE_LIMITED_CLIENT, name="limited")
    healthy, _ = connected_expired(live, oidc, unique, client_id=CLIENT_ID, name="healthy")
    client, member = signed_in(live.tenant("acme"), "member@acme.test")
    token = obtain_tokens(member, client, scope="connections")["access_token"]
    mcp = live.tenant_url("acme", "mcp")
    before = oidc.client_stats(RATE_LIMITED_CLIENT)["token_requests"]
    oidc.fail_next(1000, status=429, retry_after="60", client_id=RATE_LIMITED_CLIENT)
    results = []
    try:
        with clock.shifted():
            for second in range(0, 151, 10):
                result = call(mcp, token, "connector_profile", {"provider": limited}).json()["result"]
                results.append(result)
                if second % 60 == 0:
                    refresh_expiring_in_tenant("acme")
                if second == 30:  # meanwhile the other provider refreshes as usual
                    other = call(mcp, token, "connector_profile", {"provider": healthy}).json()["result"]
                    assert other["isError"] is False, other
                clock.advance(10)
    finally:
        oidc.fail_next(0)
    attempts = oidc.client_stats(RATE_LIMITED_CLIENT)["token_requests"] - before
    assert 1 <= attempts <= 5, attempts
    assert all(r["isError"] for r in results)
    assert {r["structuredContent"]["class"] for r in results} == {"CONNECTOR_UNAVAILABLE"}
    assert all(r["structuredContent"]["retryable"] for r in results)
    reasons = Counter(r["structuredContent"]["reason"] for r in results)
    assert reasons["provider_backoff"] >= len(results) - attempts, reasons  # refused without a call
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=limited)
        breaker = ProviderBreaker.objects.get(provider_key=limited)
    assert (account.status, account.refreshing_since) == ("active", None)
    assert breaker.state == "open" and breaker.failures["rate_limited"] == attempts
    metrics = samples(scrape(live.url))
    assert value(metrics, "platform_connector_breaker_state", tenant="acme", provider=limited) == 2
    labels = {"tenant": "acme", "provider": limited, "class": "rate_limited"}
    failures = value(metrics, "platform_connector_provider_failures_total", **labels)
    assert failures == attempts
    assert value(metrics, "platform_connector_provider_refreshes_total", tenant="acme", provider=healthy, outcome="ok")
    with schema_context("acme"):  # the auth health page's panel
        panel = provider_health()
    (row,) = [r for r in panel.rows if r[0] == limited]
    assert row[1] == "open" and f"rate_limited {attempts}" in row[3]
    assert (limited, attempts) in panel.bars


def test_when_the_open_time_is_over_a_single_probe_goes_out(live, oidc, unique, settings):
    key, account = connected_expired(live, oidc, unique, client_id=RATE_LIMITED_CLIENT, name="probe")
    oidc.fail_next(1000, status=429, retry_after="30", client_id=RATE_LIMITED_CLIENT)
    try:
        with clock.shifted(), schema_context("acme"):
            with pytest.raises(ProviderUnavailable):
                tokens.access_token(user_id=account.user_id, provider_key=key)  # opens the breaker
            clock.advance(40)  # past the open time (Retry-After, stretched by at most a fifth)
            before = oidc.client_stats(RATE_LIMITED_CLIENT)["token_requests"]
            barrier = threading.Barrier(20)

            def one(_: int) -> str:
                barrier.wait()
                try:
                    with schema_context("acme"):
                        tokens.access_token(user_id=account.user_id, provider_key=key)
                    return "ok"
                except ProviderUnavailable as exc:
                    return exc.code
                finally:
                    connection.close()

            with ThreadPoolExecutor(max_workers=20) as pool:
                outcomes = Counter(pool.map(one, range(20)))
            assert oidc.client_stats(RATE_LIMITED_CLIENT)["token_requests"] == before + 1, outcomes  # one probe
            assert outcomes == {"rate_limited": 1, "provider_backoff": 19}
            oidc.fail_next(0)  # the provider is back: the next probe closes the breaker
            clock.advance(80)
            assert tokens.access_token(user_id=account.user_id, provider_key=key)
            assert ProviderBreaker.objects.get(provider_key=key).state == "closed"
            assert tokens.access_token(user_id=account.user_id, provider_key=key)
    finally:
        oidc.fail_next(0)


def _fresh_tenant(unique: str) -> tuple[str, str]:
    from tenants.services import add_user, create_tenant

    slug = f"backoff_{unique}"
    create_tenant(slug=slug, name="Provider backoff")
    email = f"member-{unique}@backoff.test"
    add_user(slug=slug, email=email, password=PASSWORD, role="member")
    return slug, email


def test_accounts_held_back_by_the_breaker_are_spread_when_it_closes(live, oidc, unique, settings):
    settings.CONNECTORS_BREAKER_RECOVERY_SPREAD_SECONDS = 300
    settings.CONNECTORS_REFRESH_ATTEMPTS = 1
    slug, email = _fresh_tenant(unique)
    key = add_oidc_provider(oidc, slug)
    ids = bulk_accounts(oidc, slug, key, email, 20, expires_in=300)
    before = oidc.client_stats(CLIENT_ID)["token_requests"]
    oidc.fail_next(1, status=429, retry_after="60", client_id=CLIENT_ID)
    with clock.shifted():
        started = clock.now()
        counts = refresh_expiring_in_tenant(slug)
        assert oidc.client_stats(CLIENT_ID)["token_requests"] == before + 1  # one call, then the breaker
        assert counts["deferred"] == 20 and counts["refreshed"] == 0, counts
        with schema_context(slug):
            assert ProviderBreaker.objects.get().state == "open"
            retries = list(ConnectedAccount.objects.filter(pk__in=ids).values_list("next_refresh_at", flat=True))
        assert all(t >= started + timedelta(seconds=60) for t in retries)  # not before Retry-After
        assert len(set(retries)) == 20  # each at its own time
        per_run = []
        for _ in range(12):  # the job every minute once the provider is back
            clock.advance(60)
            per_run.append(refresh_expiring_in_tenant(slug)["refreshed"])
    with schema_context(slug):
        refreshed = list(ConnectedAccount.objects.filter(pk__in=ids).values_list("refresh_count", flat=True))
    assert refreshed == [1] * 20, per_run  # every account once, none twice
    assert max(per_run) < 20 and sum(1 for n in per_run if n) >= 3, per_run  # spread, not one herd


def test_time_with_the_breaker_open_does_not_count_toward_giving_up(live, oidc, unique, settings):
    settings.CONNECTORS_REFRESH_ATTEMPTS = 1
    settings.CONNECTORS_BREAKER_FAILURES = 1
    settings.CONNECTORS_BREAKER_OPEN_SECONDS = 600
    settings.CONNECTORS_REFRESH_GIVE_UP_SECONDS = 300
    slug, email = _fresh_tenant(unique)
    key = add_oidc_provider(oidc, slug)
    (account_id,) = bulk_accounts(oidc, slug, key, email, 1, expires_in=300)
    oidc.fail_next(2, status=503, client_id=CLIENT_ID)
    try:
        with clock.shifted():
            assert refresh_expiring_in_tenant(slug)["backoff"] == 1  # first failure: the breaker opens
            with schema_context(slug):
                assert ProviderBreaker.objects.get().state == "open"
            for _ in range(13):  # 13 minutes, longer than the give-up time: nothing is tried meanwhile
                clock.advance(60)
                counts = refresh_expiring_in_tenant(slug)
                if counts["backoff"] or counts["gave_up"]:
                    break
            assert counts["backoff"] == 1 and counts["gave_up"] == 0, counts  # the probe failed: back off
            with schema_context(slug):
                account = ConnectedAccount.objects.get(pk=account_id)
            assert account.status == "active" and account.refresh_failures == 2
    finally:
        oidc.fail_next(0)
