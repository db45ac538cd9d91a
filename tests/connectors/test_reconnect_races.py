"""Reconnects and disconnects against a refresh in flight, with the refresh held at the provider
(npm oidc-provider's ``/_test/delay``: processed, rotated, the answer held back until the test
releases it, so the order is fixed, not a matter of timing). The final state is
the new credential or the revoked account, never the refresh's answer, and the grants that are no
longer anyone's are revoked at the provider (checked there: introspection). A plain reconnect revokes
the previous grant and starts the account's refresh state afresh."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import tokens
from connectors.errors import ConnectorError
from connectors.models import ConnectedAccount, RetiredGrant
from tests.connectors.conftest import ConnectBrowser, account_of, add_oidc_provider
from tests.oauth_flow import hidden_inputs
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
HOLD_MS = 60_000  # a ceiling: the test releases it


class HeldRefresh:
    """An on-demand refresh of the account in another thread, held at the provider after it rotated."""

    def __init__(self, oidc, account: ConnectedAccount, key: str) -> None:
        self.oidc, self.error = oidc, None
        with schema_context("acme"):
            ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=5))
        self.issued_before = len(oidc.issued())
        refreshes = oidc.refresh_grants()
        oidc.delay_next(1, ms=HOLD_MS)
        self.thread = threading.Thread(target=self._run, args=(account.user_id, key))
        self.thread.start()
        wait_for(lambda: oidc.refresh_grants() == refreshes + 1)  # rotated at the provider, answer held back

    def _run(self, user_id: int, key: str) -> None:
        try:
            with schema_context("acme"):
                tokens.access_token(user_id=user_id, provider_key=key)
        except ConnectorError as exc:
            self.error = exc
        finally:
            connection.close()

    def release_and_join(self) -> list[dict]:
        """Let the provider answer, wait for the refresh; the tokens the provider issued to it."""
        self.oidc.release()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        return [t for t in self.oidc.issued()[self.issued_before :] if t["grant_type"] == "refresh_token"]


def lock_waiters() -> int:
    """Sessions waiting for an advisory lock (the refresh lock of ``connectors.tokens``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


def disconnect(browser: ConnectBrowser, key: str):
    page = browser.http.get(browser.url("connections/"))
    return browser.http.post(
        browser.url(f"connections/{key}/disconnect/"),
        data={"csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"]},
        headers={"Referer": browser.url("connections/")},
    )


def test_reconnect_as_another_user_while_a_refresh_is_held(live, oidc):
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302  # as alice
    account, old = account_of(key)
    held = HeldRefresh(oidc, account, key)

    bob = ConnectBrowser(live, oidc)  # the same member, now signing in at the provider as bob
    bob.steer(test_account="bob")
    callback = bob.through_provider(bob.start(key))  # the start revoked alice's grant
    answers = []
    completing = threading.Thread(target=lambda: answers.append(bob.http.get(callback)))
    completing.start()
    # the callback must wait for the refresh's lock (had it not, it answers now: then the refresh's
    # answer, released next, decides what is stored)
    wait_for(lambda: lock_waiters() == 1 or answers)
    refreshed = held.release_and_join()
    completing.join(timeout=30)
    assert answers[0].status_code == 302

    assert held.error is not None and held.error.code == "not_connected"  # its answer was not stored
    after, credential = account_of(key)
    assert (after.status, after.external_account_id) == ("active", "bob")
    assert after.refreshing_since is None and after.refresh_failures == 0
    now_at_provider = oidc.introspect(credential.access_token)
    assert now_at_provider["active"] is True and now_at_provider["sub"] == "bob"  # the new grant, not alice's
    assert oidc.introspect(credential.refresh_token)["active"] is True
    # alice's grant, including what the held refresh got, is revoked at the provider
    assert_grant_revoked(oidc, account, old, refreshed)


def assert_grant_revoked(oidc, account, old, refreshed: list[dict]) -> None:
    """The account's previous grant, including what the one held refresh got, is revoked at the
    provider, and nothing is left to retire."""
    assert len(refreshed) == 1
    for token in (old.refresh_token, old.access_token, refreshed[0]["refresh_token"], refreshed[0]["access_token"]):
        assert oidc.introspect(token)["active"] is False
    with schema_context("acme"):
        assert not RetiredGrant.objects.filter(account_id=account.pk).exists()


def test_disconnect_while_a_refresh_is_held(live, oidc):
    """With a provider that revokes only the token it is given (RFC 7009's minimum), revoking the old
    refresh token leaves the one the held refresh got alive: the refresher must revoke it."""
    key = add_oidc_provider(oidc)
    member = ConnectBrowser(live, oidc)
    assert member.connect(key).status_code == 302
    account, old = account_of(key)
    oidc.revoke_token_only()
    try:
        held = HeldRefresh(oidc, account, key)
        assert disconnect(member, key).status_code == 302  # does not wait for the refresh
        refreshed = held.release_and_join()
    finally:
        oidc.revoke_token_only(False)

    assert held.error is not None
    after, credential = account_of(key)
    assert (after.status, after.status_reason, after.revocation_pending, credential) == (
        "revoked", "disconnected", False, None,
    )  # fmt: skip
    assert_grant_revoked(oidc, account, old, refreshed)


def test_reconnect_revokes_the_previous_grant_and_starts_the_refresh_state_afresh(live, oidc):
    """In the same browser the provider reuses its session's grant for the new authorization: the
    previous grant is revoked before the user is sent there, so the new tokens are not caught by it."""
    key = add_oidc_provider(oidc)
    member = ConnectBrowser(live, oidc)
    assert member.connect(key).status_code == 302
    account, old = account_of(key)
    with schema_context("acme"):  # after a provider outage: backing off, a stale refreshing mark
        ConnectedAccount.objects.filter(pk=account.pk).update(
            refresh_failures=5,
            refresh_failing_since=timezone.now() - timedelta(hours=1),
            next_refresh_at=timezone.now() + timedelta(minutes=15),
            refreshing_since=timezone.now() - timedelta(minutes=30),
        )
    assert member.connect(key).status_code == 302
    assert oidc.introspect(old.refresh_token)["active"] is False
    assert oidc.introspect(old.access_token)["active"] is False
    after, credential = account_of(key)
    assert after.status == "active" and credential.refresh_token != old.refresh_token
    assert oidc.introspect(credential.access_token)["active"] is True
    assert oidc.introspect(credential.refresh_token)["active"] is True
    assert (after.refresh_failures, after.refresh_failing_since, after.next_refresh_at, after.refreshing_since) == (
        0, None, None, None,
    )  # fmt: skip
    assert after.credential_generation > account.credential_generation
    assert credential.generation == after.credential_generation
    page = member.http.get(member.url(f"connections/{key}/connect/"))
    assert 'id="reconnect-notice"' in page.text  # the connect page says so before the user continues


def test_a_reconnect_waits_until_the_previous_grant_is_revoked(live, oidc):
    key = add_oidc_provider(oidc)
    member = ConnectBrowser(live, oidc)
    assert member.connect(key).status_code == 302
    _, old = account_of(key)
    oidc.fail_next(1, status=503, path="/token/revocation")
    refused = member.http.post(
        member.url(f"connections/{key}/connect/"),
        data={"csrfmiddlewaretoken": member.http.cookies["csrftoken"]},
        headers={"Referer": member.url(f"connections/{key}/connect/")},
    )
    assert refused.status_code == 502 and 'id="error-code">revocation_pending<' in refused.text
    waiting, credential = account_of(key)
    assert (waiting.status, waiting.status_reason, credential) == ("needs_reauth", "reconnecting", None)
    assert oidc.introspect(old.refresh_token)["active"] is True  # kept for the retry, not forgotten
    assert member.connect(key).status_code == 302  # the provider answers again
    assert oidc.introspect(old.refresh_token)["active"] is False
    after, credential = account_of(key)
    assert after.status == "active" and oidc.introspect(credential.refresh_token)["active"] is True
