"""The token access service against the npm oidc-provider: refresh with rotation, single flight
across twenty concurrent callers (counted at the provider), classification of failures."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import tokens
from connectors.errors import ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount, Credential
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider

pytestmark = pytest.mark.timeout(120)

FAST_RETRIES = {"CONNECTORS_RETRY_BASE_DELAY_SECONDS": 0.05, "CONNECTORS_RETRY_MAX_DELAY_SECONDS": 2.0}


def connected(live, oidc, email: str = "member@acme.test") -> tuple[str, ConnectedAccount]:
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc, email=email)
    assert browser.connect(key).status_code == 302
    with schema_context("acme"):
        return key, ConnectedAccount.objects.get(provider__key=key, user__email=email)


def expire(account: ConnectedAccount) -> None:
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=5))


def state(account: ConnectedAccount) -> tuple[ConnectedAccount, Credential]:
    with schema_context("acme"):
        return ConnectedAccount.objects.get(pk=account.pk), Credential.objects.get(account_id=account.pk)


def get_token(account: ConnectedAccount, key: str) -> str:
    with schema_context("acme"):
        return tokens.access_token(user_id=account.user_id, provider_key=key)


def test_fresh_token_is_returned_without_calling_the_provider(live, oidc):
    key, account = connected(live, oidc)
    before = oidc.refresh_grants()
    _, credential = state(account)
    assert get_token(account, key) == credential.access_token
    assert oidc.refresh_grants() == before


def test_expiring_token_is_refreshed_and_the_rotated_refresh_token_committed(live, oidc):
    key, account = connected(live, oidc)
    _, old = state(account)
    expire(account)
    before = oidc.refresh_grants()
    token = get_token(account, key)
    assert oidc.refresh_grants() == before + 1
    fresh_account, new = state(account)
    assert token == new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token  # rotated, and stored
    assert oidc.introspect(new.refresh_token)["active"] is True
    assert oidc.introspect(token)["active"] is True
    assert fresh_account.status == "active" and fresh_account.refreshing_since is None
    assert fresh_account.refresh_count == 1 and fresh_account.last_refreshed_at is not None
    assert fresh_account.expires_at > timezone.now() + timedelta(minutes=30)


def test_twenty_concurrent_callers_cause_exactly_one_refresh(live, oidc):
    key, account = connected(live, oidc)
    expire(account)
    before = oidc.refresh_grants()
    barrier = threading.Barrier(20)

    def call(_: int) -> str:
        try:
            barrier.wait()
            return get_token(account, key)
        finally:
            connection.close()  # each thread has its own database connection

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    assert oidc.refresh_grants() == before + 1
    _, credential = state(account)
    assert results == [credential.access_token] * 20
    assert oidc.introspect(credential.access_token)["active"] is True


def test_invalid_grant_makes_the_account_need_reauthorization(live, oidc):
    key, account = connected(live, oidc)
    _, credential = state(account)
    assert oidc.refresh_directly(credential.refresh_token).status_code == 200  # rotated behind our back
    expire(account)
    with pytest.raises(ReauthRequired) as error:
        get_token(account, key)
    assert error.value.code == "invalid_grant"
    after, _ = state(account)
    assert (after.status, after.status_reason) == ("needs_reauth", "invalid_grant")
    before = oidc.refresh_grants()
    with pytest.raises(ReauthRequired):  # terminal: no further calls to the provider (no retry storm)
        get_token(account, key)
    assert oidc.refresh_grants() == before


def test_refresh_interrupted_after_the_provider_rotated_becomes_refresh_lost(live, oidc):
    key, account = connected(live, oidc)
    _, credential = state(account)
    # a worker marked the account, the provider rotated, and the worker died before committing
    assert oidc.refresh_directly(credential.refresh_token).status_code == 200
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(status="refreshing", refreshing_since=timezone.now())
    with pytest.raises(ReauthRequired) as error:
        get_token(account, key)
    assert error.value.code == "refresh_lost"
    after, _ = state(account)
    assert (after.status, after.status_reason) == ("needs_reauth", "refresh_lost")


def test_refresh_interrupted_before_the_provider_answered_is_resumed(live, oidc):
    key, account = connected(live, oidc)
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(status="refreshing", refreshing_since=timezone.now())
    before = oidc.refresh_grants()
    token = get_token(account, key)
    assert oidc.refresh_grants() == before + 1
    after, credential = state(account)
    assert after.status == "active" and token == credential.access_token


@override_settings(**FAST_RETRIES)
def test_transient_failures_are_retried_honouring_retry_after(live, oidc):
    key, account = connected(live, oidc)
    expire(account)
    before = oidc.stats()
    oidc.fail_next(2, status=503, retry_after="0")
    token = get_token(account, key)
    after = oidc.stats()
    assert after["token_failures_injected"] == before["token_failures_injected"] + 2
    assert after["grants"]["refresh_token"] == before["grants"].get("refresh_token", 0) + 1
    _, credential = state(account)
    assert token == credential.access_token


@override_settings(**FAST_RETRIES, CONNECTORS_BREAKER_FAILURES=10)  # this account's retries, not the breaker
def test_persistent_unavailability_is_transient_and_keeps_the_account(live, oidc):
    key, account = connected(live, oidc)
    expire(account)
    oidc.fail_next(3, status=503)
    with pytest.raises(ProviderUnavailable) as error:
        get_token(account, key)
    assert error.value.code == "provider_unavailable" and error.value.transient
    after, _ = state(account)
    assert after.status == "active" and after.refreshing_since is None  # nothing rotated: retry later works
    assert get_token(account, key)  # the provider is back


@override_settings(**FAST_RETRIES)
def test_retry_after_beyond_the_cap_is_not_waited_for(live, oidc):
    key, account = connected(live, oidc)
    expire(account)
    oidc.fail_next(1, status=503, retry_after="3600")
    before = oidc.stats()["token_failures_injected"]
    with pytest.raises(ProviderUnavailable) as error:
        get_token(account, key)
    assert error.value.retry_after == 3600
    assert oidc.stats()["token_failures_injected"] == before + 1  # one try, no waiting an hour


def test_missing_and_revoked_accounts_need_connecting(live, oidc):
    key, account = connected(live, oidc)
    with pytest.raises(ReauthRequired) as missing, schema_context("acme"):
        tokens.access_token(user_id=account.user_id, provider_key="not-configured")
    assert missing.value.code == "not_connected"
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(status="revoked")
    with pytest.raises(ReauthRequired) as revoked:
        get_token(account, key)
    assert revoked.value.code == "revoked"
