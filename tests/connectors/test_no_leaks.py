"""A whole connector flow at DEBUG log level: connect, refresh with rotation, disconnect. No token,
code, client secret or state appears in the platform's log output."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import tokens
from connectors.models import ConnectedAccount, Credential
from tests.connectors.conftest import CLIENT_SECRET, ConnectBrowser, add_oidc_provider
from tests.oauth_flow import hidden_inputs, query_params

TEST_CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own HTTP client logs the URLs it requests


def test_no_secret_reaches_the_logs_of_a_whole_flow(live, oidc, caplog):
    caplog.set_level(logging.DEBUG)
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    authorize = browser.start(key)
    callback = browser.through_provider(authorize)
    secrets = {
        query_params(authorize)["state"],
        query_params(callback)["code"],
        CLIENT_SECRET,
    }
    assert browser.http.get(callback).status_code == 302
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key, user__email="member@acme.test")
        first = Credential.objects.get(account=account)
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        tokens.access_token(user_id=account.user_id, provider_key=key)
        second = Credential.objects.get(account=account)
    secrets |= {first.access_token, first.refresh_token, second.access_token, second.refresh_token}
    page = browser.http.get(browser.url("connections/"))
    response = browser.http.post(
        browser.url(f"connections/{key}/disconnect/"),
        data={"csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"]},
        headers={"Referer": browser.url("connections/")},
    )
    assert response.status_code == 302
    platform_output = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if not record.name.startswith(TEST_CLIENT_LOGGERS)
    )
    assert "connectors: account" in platform_output  # the flow did log, at DEBUG
    assert any(record.levelname == "DEBUG" for record in caplog.records)
    leaked = [s for s in secrets if s and s in platform_output]
    assert leaked == []
