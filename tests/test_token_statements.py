"""The token endpoint's statements: a code exchange and a refresh of a public client, run
through the WSGI application in this process so every statement is counted, ``BEGIN``/``COMMIT``
included. Each writes its rows in one autocommitted statement; the behaviour those statements
carry (single-use codes, replay detection, rotation with reuse detection and its grace window,
step-up, lifetimes) is tested over HTTP in test_oauth_server.py, test_refresh_races.py and
test_step_up_refresh.py."""

from __future__ import annotations

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from tests.oauth_flow import REDIRECT_URI, Browser, Tenant, authorize_url, pkce_pair, redirect_params, register


@pytest.fixture
def in_process(live):
    from django.core.wsgi import get_wsgi_application

    http = httpx.Client(transport=httpx.WSGITransport(app=get_wsgi_application()), follow_redirects=False)
    tenant = Tenant("http://testserver/t/acme", "acme")
    browser = Browser(tenant, "member@acme.test", http=http)
    browser.login()
    yield http, browser, register(tenant, http=http, client_name="statements")
    http.close()


def _code(browser, client) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    code = redirect_params(browser.authorize(authorize_url(client, scope="crm.read", challenge=challenge)))["code"]
    return code, verifier


def _exchange(http, client, code: str, verifier: str):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    return http.post(client.tenant.url("token/"), data={"client_id": client.client_id, **data})


def _refresh(http, client, refresh_token):
    data = {"client_id": client.client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
    return http.post(client.tenant.url("token/"), data=data)


def test_an_exchange_and_a_refresh_write_in_one_statement_each(in_process):
    from oauth2_provider.models import RefreshToken

    http, browser, client = in_process
    assert _exchange(http, client, *_code(browser, client)).status_code == 200  # first one: consent, caches
    code, verifier = _code(browser, client)
    with CaptureQueriesContext(connection) as exchanged:
        answer = _exchange(http, client, code, verifier)
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    with CaptureQueriesContext(connection) as refreshed:
        rotated = _refresh(http, client, issued["refresh_token"])
    assert rotated.status_code == 200, rotated.text

    for captured in (exchanged, refreshed):
        # (a search_path switch is the connection's state, not the request's: steady state has none)
        statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith("SET search_path")]
        # tenant routing, the client with the grant / live refresh token (prepared), the write, DOT's
        # read of the issued access token (app_authorized), the audit row; no transaction round trips
        assert len(statements) == 5, statements
        assert not any(sql in ("BEGIN", "COMMIT") for sql in statements), statements
        assert statements[1].startswith("EXECUTE (prepared)"), statements[1]

    with schema_context("acme"):
        old = RefreshToken.objects.get(token_checksum=_checksum(issued["refresh_token"]))
        new = RefreshToken.objects.get(token_checksum=_checksum(rotated.json()["refresh_token"]))
    assert old.revoked is not None and old.access_token_id is None
    assert new.revoked is None and new.token_family == old.token_family and new.access_token.source_refresh_token == old


def _checksum(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()
