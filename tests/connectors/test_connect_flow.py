"""The connect pages against the npm oidc-provider over loopback: connect, errors, disconnect."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from connectors.models import AuthorizationRequest, ConnectedAccount, Credential
from tests.conftest import PASSWORD
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.oauth_flow import hidden_inputs, query_params

pytestmark = pytest.mark.timeout(60)


def account(key: str, email: str = "member@acme.test") -> ConnectedAccount | None:
    with schema_context("acme"):
        return ConnectedAccount.objects.filter(provider__key=key, user__email=email).first()


def credential(account_id: int) -> Credential:
    with schema_context("acme"):
        return Credential.objects.get(account_id=account_id)


def test_connect_stores_identity_scopes_and_encrypted_tokens(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_account="alice")
    authorize = browser.start(key)
    query = query_params(authorize)
    assert authorize.startswith(oidc.issuer)
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    assert query["redirect_uri"] == live.tenant_url("acme", "connections/callback/")
    done = browser.http.get(browser.through_provider(authorize))
    assert done.status_code == 302 and done.headers["location"].endswith(f"?done=connected:{key}")

    found = account(key)
    assert found.status == "active"
    assert found.external_account_id == "alice"
    assert found.external_account_label == "alice@oidc.example"
    assert set(found.granted_scopes) == {"openid", "offline_access", "email", "profile"}
    assert found.expires_at is not None
    tokens = credential(found.pk)
    assert tokens.refresh_token and oidc.introspect(tokens.access_token)["active"] is True
    with schema_context("acme"), connection.cursor() as cursor:  # at rest: ciphertext only
        cursor.execute(
            "SELECT access_token, refresh_token FROM connectors_credential WHERE account_id = %s", [found.pk]
        )
        raw_access, raw_refresh = (bytes(v) for v in cursor.fetchone())
    assert tokens.access_token.encode() not in raw_access and tokens.refresh_token.encode() not in raw_refresh
    page = browser.http.get(browser.url("connections/"))
    assert f'data-provider="{key}"' in page.text and 'data-status="active"' in page.text
    assert "alice@oidc.example" in page.text
    assert tokens.access_token not in page.text and tokens.refresh_token not in page.text


def test_narrower_consent_is_recorded_and_shown(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_account="bob", test_grant_scopes="openid offline_access")
    assert browser.connect(key).status_code == 302
    found = account(key)
    assert sorted(found.granted_scopes) == ["offline_access", "openid"]
    assert found.narrower_than_requested == ["email", "profile"]
    page = browser.http.get(browser.url("connections/"))
    assert "not granted: email, profile" in page.text


def test_denied_consent_is_shown_and_stores_nothing(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_deny="1")
    response = browser.connect(key)
    assert response.status_code == 400
    assert 'id="error-code">access_denied<' in response.text
    assert account(key) is None


def test_state_is_accepted_once(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    callback = browser.through_provider(browser.start(key))
    assert browser.http.get(callback).status_code == 302
    replay = browser.http.get(callback)
    assert replay.status_code == 400 and 'id="error-code">state_replayed<' in replay.text


def test_state_of_another_user_is_refused_and_stays_usable(live, oidc):
    key = add_oidc_provider(oidc)
    victim = ConnectBrowser(live, oidc)
    callback = victim.through_provider(victim.start(key))
    attacker = ConnectBrowser(live, oidc, email="admin@acme.test")
    stolen = attacker.http.get(callback)
    assert stolen.status_code == 400 and 'id="error-code">state_mismatch<' in stolen.text
    assert account(key, "admin@acme.test") is None
    assert victim.http.get(callback).status_code == 302  # the rightful session still completes
    assert account(key).status == "active"


def test_session_expiring_during_the_round_trip_completes_after_logging_in_again(live, oidc):
    """The state is bound to the user, not the session: the user logs in again (a new session key)
    and the callback completes; another user who logs in cannot complete it."""
    from django.contrib.sessions.models import Session

    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    callback = browser.through_provider(browser.start(key))
    old_key = browser.http.cookies["sessionid_acme"]
    with schema_context("acme"):  # the session expires while the user is at the provider
        assert Session.objects.filter(session_key=old_key).delete()[0] == 1

    to_login = browser.http.get(callback)
    assert to_login.status_code == 302 and "/login/?next=" in to_login.headers["location"]
    login_page = browser.http.get(urljoin(callback, to_login.headers["location"]))
    form = hidden_inputs(login_page.text)
    assert form["next"].startswith("/t/acme/connections/callback/?")
    # someone else signs in on this browser first: refused, and the state is not used up
    intruder = browser.http.post(
        login_page.url,
        data={**form, "username": "admin@acme.test", "password": PASSWORD},
        headers={"Referer": str(login_page.url)},
    )
    assert intruder.status_code == 302
    refused = browser.http.get(urljoin(callback, intruder.headers["location"]))
    assert refused.status_code == 400 and 'id="error-code">state_mismatch<' in refused.text
    assert account(key, "admin@acme.test") is None

    browser.http.cookies.clear()
    login_page = browser.http.get(urljoin(callback, to_login.headers["location"]))
    form = hidden_inputs(login_page.text)
    again = browser.http.post(
        login_page.url,
        data={**form, "username": "member@acme.test", "password": PASSWORD},
        headers={"Referer": str(login_page.url)},
    )
    assert again.status_code == 302 and again.headers["location"] == form["next"]
    assert browser.http.cookies["sessionid_acme"] != old_key
    done = browser.http.get(urljoin(callback, again.headers["location"]))
    assert done.status_code == 302 and f"connected:{key}" in done.headers["location"]
    assert account(key).status == "active"


def test_unknown_and_expired_state(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    unknown = browser.http.get(browser.url("connections/callback/?state=made-up&code=x"))
    assert unknown.status_code == 400 and 'id="error-code">unknown_state<' in unknown.text
    callback = browser.through_provider(browser.start(key))
    with schema_context("acme"):
        AuthorizationRequest.objects.filter(provider__key=key).update(
            expires_at=AuthorizationRequest.objects.filter(provider__key=key).values("created_at")[:1]
        )
    expired = browser.http.get(callback)
    assert expired.status_code == 400 and 'id="error-code">state_expired<' in expired.text
    assert account(key) is None


def test_pages_need_a_signed_in_member(live, oidc):
    key = add_oidc_provider(oidc)
    import httpx

    anonymous = httpx.get(live.tenant_url("acme", f"connections/{key}/connect/"), follow_redirects=False)
    assert anonymous.status_code == 302 and "/login/" in anonymous.headers["location"]
    assert httpx.get(live.tenant_url("acme", "connections/nope/connect/")).status_code == 302
    browser = ConnectBrowser(live, oidc)
    assert browser.http.get(browser.url("connections/nope/connect/")).status_code == 404


def test_disconnect_revokes_at_the_provider_and_deletes_credentials(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    assert browser.connect(key).status_code == 302
    found = account(key)
    tokens = credential(found.pk)
    revocations = oidc.stats()["revocations"]
    page = browser.http.get(browser.url("connections/"))
    from tests.oauth_flow import hidden_inputs

    response = browser.http.post(
        browser.url(f"connections/{key}/disconnect/"),
        data={"csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"]},
        headers={"Referer": browser.url("connections/")},
    )
    assert response.status_code == 302 and response.headers["location"].endswith(f"?done=disconnected:{key}")
    assert oidc.stats()["revocations"] == revocations + 2
    assert oidc.introspect(tokens.refresh_token)["active"] is False
    assert oidc.introspect(tokens.access_token)["active"] is False
    gone = account(key)
    assert gone.status == "revoked" and gone.revocation_pending is False
    with schema_context("acme"):
        assert not Credential.objects.filter(account_id=found.pk).exists()


def test_exchange_failures_are_classified_and_store_nothing(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    callback = browser.through_provider(browser.start(key))
    oidc.fail_next(1, status=503)
    unavailable = browser.http.get(callback)
    assert unavailable.status_code == 502 and 'id="error-code">provider_unavailable<' in unavailable.text
    assert account(key) is None

    with schema_context("acme"):
        from connectors.models import Provider

        provider = Provider.objects.get(key=key)
        provider.client_secret = "not-the-registered-secret"
        provider.save()
    callback = browser.through_provider(browser.start(key))
    refused = browser.http.get(callback)
    assert refused.status_code == 400 and 'id="error-code">invalid_client<' in refused.text
    assert "not-the-registered-secret" not in refused.text
    assert account(key) is None
