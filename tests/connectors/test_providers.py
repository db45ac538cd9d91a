"""Providers: presets as data, discovery from an issuer, the https rule, SSRF-safe outbound HTTP,
the client secret encrypted at rest, and the ``connector_provider_add`` command."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from connectors import http
from connectors.errors import ConnectorError
from connectors.models import Provider
from connectors.presets import preset_names
from connectors.services import add_provider
from tests.connectors.conftest import CLIENT_ID, CLIENT_SECRET

PRESETS = ["atlassian", "github", "google", "hubspot", "microsoft", "salesforce", "slack"]


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("connector_provider_add", *args, stdout=out)
    return out.getvalue()


def test_every_required_preset_is_there():
    assert preset_names() == PRESETS


@pytest.mark.django_db
@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_creates_a_provider(name):
    with schema_context("acme"):
        provider, outcome = add_provider(key=f"p-{name}", preset_name=name, client_id="id", client_secret="secret")
        assert outcome.changed
        assert provider.authorization_endpoint.startswith("https://")
        assert provider.token_endpoint.startswith("https://") and provider.default_scopes
        assert "{" not in provider.authorization_endpoint + provider.token_endpoint


@pytest.mark.django_db
def test_preset_quirks_and_placeholders():
    with schema_context("acme"):
        slack, _ = add_provider(key="slack", preset_name="slack", client_id="id", client_secret="s")
        assert slack.scope_separator == ","
        entra, _ = add_provider(
            key="entra",
            preset_name="microsoft",
            preset_params={"tenant": "contoso.onmicrosoft.com"},
            client_id="id",
            client_secret="s",
        )
        assert entra.token_endpoint == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        google, _ = add_provider(key="google", preset_name="google", client_id="id", client_secret="s")
        assert google.extra_authorize_params["access_type"] == "offline"
        github, _ = add_provider(key="github", preset_name="github", client_id="id", client_secret="s")
        assert github.account_id_claim == "id" and github.revocation_endpoint == ""


@pytest.mark.django_db
def test_client_secret_is_encrypted_at_rest():
    with schema_context("acme"):
        provider, _ = add_provider(key="enc", preset_name="google", client_id="id", client_secret="very-secret-value")
        with connection.cursor() as cursor:
            cursor.execute("SELECT client_secret FROM connectors_provider WHERE id = %s", [provider.pk])
            raw = bytes(cursor.fetchone()[0])
        assert b"very-secret-value" not in raw
        assert Provider.objects.get(pk=provider.pk).client_secret == "very-secret-value"


@pytest.mark.django_db
def test_discovery_fills_the_endpoints_from_the_issuer(oidc):
    with schema_context("acme"):
        provider, _ = add_provider(key="disc", issuer=oidc.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert provider.issuer == oidc.issuer
    assert provider.authorization_endpoint == f"{oidc.issuer}/auth"
    assert provider.token_endpoint == f"{oidc.issuer}/token"
    assert provider.revocation_endpoint == f"{oidc.issuer}/token/revocation"
    assert provider.userinfo_endpoint == f"{oidc.issuer}/me"
    assert provider.pkce is True and provider.token_endpoint_auth_method == "client_secret_basic"
    assert provider.default_scopes == ["openid", "offline_access"]


@pytest.mark.django_db
def test_discovery_refuses_a_document_naming_another_issuer(oidc):
    other_name = oidc.issuer.replace("127.0.0.1", "localhost")  # same server, but not the issuer it names
    with schema_context("acme"), pytest.raises(ConnectorError) as mismatch:
        add_provider(key="bad", issuer=other_name, client_id="id", client_secret="s")
    assert mismatch.value.code == "issuer_mismatch"
    with schema_context("acme"), pytest.raises(ConnectorError) as missing:
        add_provider(key="bad", issuer=oidc.issuer + "/other", client_id="id", client_secret="s")
    assert missing.value.code == "discovery_failed"  # no metadata under that path


@pytest.mark.django_db
def test_plain_http_is_refused_except_loopback_in_development():
    endpoints = {"authorization_endpoint": "http://auth.example/a", "token_endpoint": "http://auth.example/t"}
    with schema_context("acme"):
        with pytest.raises(ConnectorError) as error:
            add_provider(key="plain", endpoints=endpoints, client_id="id", client_secret="s")
        assert error.value.code == "insecure_url"
        loopback = {"authorization_endpoint": "http://127.0.0.1:9/a", "token_endpoint": "http://127.0.0.1:9/t"}
        assert add_provider(key="dev", endpoints=loopback, client_id="id", client_secret="s")[1].changed
        with override_settings(PRODUCTION=True), pytest.raises(ConnectorError) as prod:
            add_provider(key="prod", endpoints=loopback, client_id="id", client_secret="s")
        assert prod.value.code == "insecure_url"


def test_outbound_http_refuses_private_addresses_and_loopback_in_production():
    with pytest.raises(http.OutboundError) as private:
        http.request("GET", "https://10.1.2.3/token")
    assert private.value.code == "blocked_address"
    with pytest.raises(http.OutboundError) as metadata:
        http.request("GET", "https://169.254.169.254/latest/meta-data")
    assert metadata.value.code == "blocked_address"
    with override_settings(PRODUCTION=True), pytest.raises(http.OutboundError) as loopback:
        http.request("GET", "https://127.0.0.1:9/token")
    assert loopback.value.code == "blocked_address"


@override_settings(CONNECTORS_HTTP_MAX_BYTES=100)
def test_outbound_http_caps_the_response_size(oidc):
    with pytest.raises(http.OutboundError) as error:
        http.request("GET", f"{oidc.issuer}/.well-known/openid-configuration")
    assert error.value.code == "too_large"


@pytest.mark.django_db
def test_command_is_idempotent_and_reports_stable_codes(oidc):
    args = ["acme", "cli-google", "--preset", "google", "--client-id", "id", "--client-secret", "s1"]
    assert "added" in run(*args)
    assert "already exists" in run(*args)
    assert "updated (client_secret)" in run(*args[:-1], "s2")
    with schema_context("acme"):
        assert Provider.objects.get(key="cli-google").client_secret == "s2"
    failures = {
        "unknown_tenant": ["nope", "k", "--preset", "google", "--client-id", "i", "--client-secret", "s"],
        "unknown_preset": ["acme", "k", "--preset", "nope", "--client-id", "i", "--client-secret", "s"],
        "invalid_key": ["acme", "Not A Slug", "--preset", "google", "--client-id", "i", "--client-secret", "s"],
        "client_secret_required": ["acme", "k", "--preset", "google", "--client-id", "i"],
        "insecure_url": [
            "acme",
            "k",
            "--authorize-url",
            "http://x.example/a",
            "--token-url",
            "http://x.example/t",
            "--client-id",
            "i",
            "--client-secret",
            "s",
        ],
        "missing_endpoint": [
            "acme",
            "k",
            "--authorize-url",
            "https://x.example/a",
            "--client-id",
            "i",
            "--client-secret",
            "s",
        ],
    }
    for code, argv in failures.items():
        with pytest.raises(CommandError) as error:
            run(*argv)
        assert str(error.value).endswith(f"[{code}]"), (code, str(error.value))
    out = run(
        "acme",
        "cli-oidc",
        "--issuer",
        oidc.issuer,
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
        "--scopes",
        "openid email",
        "--name",
        "Test IdP",
    )
    assert "added" in out
    with schema_context("acme"):
        provider = Provider.objects.get(key="cli-oidc")
    assert provider.display_name == "Test IdP" and provider.default_scopes == ["openid", "email"]
    assert CLIENT_SECRET not in out


@pytest.mark.django_db
def test_command_sets_the_api_base_and_the_resource_to_ask_for():
    base = "https://platform.example/t/globex/api"
    args = [
        "acme",
        "cli-globex-api",
        "--authorize-url",
        "https://platform.example/t/globex/authorize/",
        "--token-url",
        "https://platform.example/t/globex/token/",
        "--client-id",
        "id",
        "--client-secret",
        "s",
    ]
    assert "added" in run(*args, "--api-base-url", base + "/", "--resource", base)
    assert "already exists" in run(*args, "--api-base-url", base, "--resource", base)
    with schema_context("acme"):
        provider = Provider.objects.get(key="cli-globex-api")
    assert provider.api_base_url == base and provider.extra_authorize_params == {"resource": base}
    google = ["acme", "cli-google-res", "--preset", "google", "--client-id", "id", "--client-secret", "s"]
    run(*google, "--resource", "https://www.googleapis.com/")
    with schema_context("acme"):
        params = Provider.objects.get(key="cli-google-res").extra_authorize_params
    assert params["access_type"] == "offline" and params["resource"] == "https://www.googleapis.com/"  # both kept
    with pytest.raises(CommandError) as error:
        run("acme", "cli-bad-api", *args[2:], "--api-base-url", "http://platform.example/api")
    assert str(error.value).endswith("[insecure_url]")
