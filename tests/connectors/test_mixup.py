"""Mix-up defence (RFC 9207) and ID-token checks (OpenID Connect Core 3.1.3.7) against the npm
oidc-provider: its discovery document says it always sends ``iss``, so a callback without it is
refused; the ID token's signature (its JWKS), ``iss``, ``aud``/``azp``, ``exp`` and ``nonce`` are
checked, each refusal with its own code, nothing stored, and the tokens obtained revoked. Presets carry
their provider's issuer where it has one."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from django_tenants.utils import schema_context

from connectors import id_tokens
from connectors.models import Provider
from connectors.presets import preset
from tests.connectors.conftest import CLIENT_ID, ConnectBrowser, account_of, add_oidc_provider

pytestmark = pytest.mark.timeout(90)


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_discovery_records_the_mixup_defence_and_the_signing_keys(live, oidc):
    key = add_oidc_provider(oidc)
    with schema_context("acme"):
        provider = Provider.objects.get(key=key)
    assert provider.authorization_response_iss_parameter_supported is True
    assert provider.jwks_uri == f"{oidc.issuer}/jwks"


def test_the_callback_must_name_the_issuer_when_the_provider_says_it_always_does(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    callback = browser.through_provider(browser.start(key))
    assert dict(parse_qsl(urlsplit(callback).query))["iss"] == oidc.issuer  # what the provider sent
    missing = browser.http.get(with_query(callback, iss=None))  # stripped on the way
    assert missing.status_code == 400 and 'id="error-code">issuer_missing<' in missing.text
    callback = browser.through_provider(browser.start(key))
    other = browser.http.get(with_query(callback, iss="https://attacker.example"))
    assert other.status_code == 400 and 'id="error-code">issuer_mismatch<' in other.text
    assert account_of(key) == (None, None)
    assert browser.connect(key).status_code == 302  # the untouched answer still works


NOW = int(time.time())
CASES = {
    "another audience": ({"aud": "another-client"}, False, "id_token_audience_mismatch"),
    "several audiences, no azp": ({"aud": [CLIENT_ID, "another-client"], "azp": None}, False,
                                  "id_token_audience_mismatch"),
    "azp of another client": ({"azp": "another-client"}, False, "id_token_audience_mismatch"),
    "another issuer": ({"iss": "https://attacker.example"}, False, "id_token_issuer_mismatch"),
    "expired": ({"exp": NOW - 3600, "iat": NOW - 7200}, False, "id_token_expired"),
    "no iat": ({"iat": None}, False, "invalid_id_token"),
    "signed with a key the provider does not publish": ({}, True, "invalid_id_token"),
    "another attempt's nonce": ({"nonce": "not-this-attempt"}, False, "nonce_mismatch"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_id_tokens_are_checked(live, oidc, case):
    claims, foreign_key, code = CASES[case]
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    callback = browser.through_provider(browser.start(key))
    issued = len(oidc.issued())
    oidc.tamper_id_token(claims, foreign_key=foreign_key)
    refused = browser.http.get(callback)
    assert refused.status_code == 400 and f'id="error-code">{code}<' in refused.text
    assert account_of(key) == (None, None)
    got = oidc.issued()[issued:]
    assert len(got) == 1  # the exchange; what it gave was revoked, not left alive
    assert oidc.introspect(got[0]["refresh_token"])["active"] is False
    assert oidc.introspect(got[0]["access_token"])["active"] is False


def test_presets_name_their_providers_issuer():
    assert preset("google")["issuer"] == "https://accounts.google.com"
    assert preset("salesforce")["issuer"] == "https://login.salesforce.com"
    assert preset("slack")["issuer"] == "https://slack.com"
    for name in ("github", "hubspot", "atlassian"):  # plain OAuth 2.0: no OpenID issuer, no ID token
        assert preset(name)["issuer"] == ""
    # Entra per directory; its multi-tenant endpoints issue tokens naming the user's own directory
    assert preset("microsoft", {"tenant": "contoso.onmicrosoft.com"})["issuer"] == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
    )
    common = Provider(**preset("microsoft"), client_id="c")
    assert common.issuer == "https://login.microsoftonline.com/{tenantid}/v2.0"
    tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    issuer = f"https://login.microsoftonline.com/{tid}/v2.0"
    assert id_tokens.issuer_matches(common, issuer, {"tid": tid})
    assert not id_tokens.issuer_matches(common, issuer, {"tid": "9188040d-6c67-4c5b-b112-36a304b66dad"})
    assert not id_tokens.issuer_matches(common, issuer, {})
    consumers = Provider(**preset("microsoft", {"tenant": "consumers"}), client_id="c")
    assert consumers.issuer == "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
    google = Provider(**preset("google"), preset="google", client_id="c")
    assert id_tokens.issuer_matches(google, "accounts.google.com")  # Google documents both forms
    assert not id_tokens.issuer_matches(google, "https://accounts.google.com.attacker.example")
