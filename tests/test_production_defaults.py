"""Production refuses unsafe settings, development refuses a public bind, no log level
lets a secret through, the CIMD loopback allowance is refused in production, and the benchmark puts
back what it changes."""

from __future__ import annotations

import importlib.util
import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django_tenants.utils import schema_context

from tests.conftest import PASSWORD
from tests.mcp_raw import modern_request
from tests.oauth_flow import authorize_url, pkce_pair, redirect_params, register, signed_in_browser

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 50,
    "FERNET_KEYS": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
    "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",  # never connected: only the settings are read
    "ALLOWED_HOSTS": "platform.example",
    "PUBLIC_BASE_URL": "https://platform.example",
}
SHOWN = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "BEHIND_PROXY",
)


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Evaluate config/settings.py in a fresh interpreter with exactly ``env`` (plus PATH)."""
    code = f"import json, config.settings as s; print(json.dumps({{k: getattr(s, k) for k in {SHOWN!r}}}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "PLATFORM_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_debug(tmp_path):
    result = load_settings(tmp_path, **PRODUCTION_ENV, DEBUG="1")
    assert result.returncode != 0
    assert "production refuses DEBUG" in result.stderr


def test_production_turns_on_https_redirect_and_hsts(tmp_path):
    result = load_settings(tmp_path, **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["DEBUG"] is False and values["SESSION_COOKIE_SECURE"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 365 * 86400 and values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] is None and values["BEHIND_PROXY"] is False

    behind = json.loads(load_settings(tmp_path, **PRODUCTION_ENV, BEHIND_PROXY="1").stdout)
    assert behind["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"] and behind["BEHIND_PROXY"] is True


def test_development_has_no_https_redirect_or_hsts(tmp_path):
    result = load_settings(tmp_path, DATABASE_URL=PRODUCTION_ENV["DATABASE_URL"])
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["SECURE_SSL_REDIRECT"] is False and values["SECURE_HSTS_SECONDS"] == 0


@pytest.mark.django_db
def test_https_redirect_spares_health_probes_and_honours_the_proxy(client, settings):
    """The production values in action (SecurityMiddleware reads them when the test client starts)."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 365 * 86400
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # BEHIND_PROXY=1
    redirected = client.get("/t/acme/login/")
    assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/t/acme/login/"
    for probe in ("/healthz", "/t/acme/healthz"):
        response = client.get(probe)
        assert response.status_code == 200, (probe, response.status_code)
        assert "Strict-Transport-Security" not in response  # plain HTTP never carries HSTS
    secure = client.get("/t/acme/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


# --- make run ---------------------------------------------------------------------------------------


def _run_platform_module():
    spec = importlib.util.spec_from_file_location("run_platform", ROOT / "tools" / "run_platform.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_platform_refuses_a_public_bind_in_development(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "PLATFORM_VAR_DIR": str(tmp_path),
        "HOST": "0.0.0.0",
        "DATABASE_URL": PRODUCTION_ENV["DATABASE_URL"],  # were the refusal missing, start-up would fail fast
    }
    result = subprocess.run(
        [sys.executable, "tools/run_platform.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "refusing to bind '0.0.0.0' in development mode" in result.stderr


def test_run_platform_in_production_never_reads_the_dev_secrets(tmp_path):
    """``make run`` with DJANGO_ENV=production takes nothing from var/dev.env: a checkout's generated
    secrets would otherwise satisfy, and so defeat, production's refusal to start unconfigured."""
    (tmp_path / "dev.env").write_text("SECRET_KEY=dev-secret\nFERNET_KEYS=dev-fernet\nMETRICS_TOKEN=dev-metrics\n")
    env = {
        "PATH": os.environ["PATH"],
        "PLATFORM_VAR_DIR": str(tmp_path),
        "DJANGO_ENV": "production",
        "HOST": "0.0.0.0",
        "DATABASE_URL": PRODUCTION_ENV["DATABASE_URL"],
    }
    result = subprocess.run(
        [sys.executable, "tools/run_platform.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "production refuses to start without: SECRET_KEY, FERNET_KEYS, ALLOWED_HOSTS, PUBLIC_BASE_URL" in (
        result.stderr
    )
    assert (tmp_path / "dev.env").read_text().count("\n") == 3  # neither read into the run nor completed


def test_bind_refusal_rules():
    bind_refusal = _run_platform_module().bind_refusal
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert bind_refusal(loopback, {}) is None, loopback
    for public in ("0.0.0.0", "::", "192.0.2.10", "platform.example"):
        assert "refusing to bind" in bind_refusal(public, {}), public
        assert bind_refusal(public, {"ALLOW_DEV_ON_PUBLIC_INTERFACE": "1"}) is None
        assert bind_refusal(public, {"DJANGO_ENV": "production"}) is None
    assert bind_refusal("0.0.0.0", {"ALLOW_DEV_ON_PUBLIC_INTERFACE": "yes please"}) is not None


# --- logs -------------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.levels: set[int] = set()
        self.formatter_ = logging.Formatter("%(name)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.levels.add(record.levelno)
        try:
            shown = self.formatter_.format(record)
        except Exception:  # a record that cannot format is still inspected below
            shown = str(record.msg)
        self.texts.append(f"{shown}\n{record.args!r}\n{vars(record)!r}")


def test_debug_logging_never_shows_a_token_or_secret(live, settings):
    """LOG_LEVEL=DEBUG (root logger at DEBUG, the settings' own logging config) over a whole flow:
    registration, login, consent, code exchange, an MCP call, a refresh."""
    from config.log_config import logging_config

    logging.config.dictConfig(logging_config("DEBUG"))
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    try:
        tenant = live.tenant("acme")
        client = register(tenant, token_endpoint_auth_method="client_secret_post")
        assert client.client_secret
        browser = signed_in_browser(tenant, "member@acme.test")
        verifier, challenge = pkce_pair()
        url = authorize_url(client, scope="crm.read", challenge=challenge, resource=tenant.mcp)
        code = redirect_params(browser.authorize(url))["code"]
        token_url = tenant.url("token/")
        credentials = {"client_id": client.client_id, "client_secret": client.client_secret}
        first = httpx.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": client.redirect_uri,
                "code_verifier": verifier,
                **credentials,
            },
        )
        assert first.status_code == 200, first.text
        tokens = first.json()
        listed = modern_request(tenant.mcp, "tools/list", token=tokens["access_token"])
        assert listed.status_code == 200, listed.text
        second = httpx.post(
            token_url, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **credentials}
        )
        assert second.status_code == 200, second.text
        rotated = second.json()
    finally:
        logging.getLogger().removeHandler(capture)
        logging.config.dictConfig(settings.LOGGING)

    assert logging.DEBUG in capture.levels  # the run really logged at DEBUG
    secrets = {
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "rotated access token": rotated["access_token"],
        "rotated refresh token": rotated["refresh_token"],
        "authorization code": code,
        "client secret": client.client_secret,
        "PKCE verifier": verifier,
        "password": PASSWORD,
    }
    for what, value in secrets.items():
        leaks = [text[:300] for text in capture.texts if value in text]
        assert not leaks, f"{what} reached a log record: {leaks[:3]}"


# --- CIMD -------------------------------------------------------------------------------------------


def test_cimd_loopback_allowance_is_refused_in_production(settings, document_server):
    from oauth2_provider.cimd import CIMDError

    from oauth.cimd import PlatformMetadataFetcher

    client_id = "https://cimd.example.test/client.json"
    document = {
        "client_id": client_id,
        "client_name": "x",
        "redirect_uris": ["https://cimd.example.test/callback"],
        "token_endpoint_auth_method": "none",
    }
    document_server.documents["/client.json"] = json.dumps(document).encode()
    hits = document_server.hits
    settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS = {"cimd.example.test": document_server.url}
    settings.PRODUCTION = False
    assert PlatformMetadataFetcher().fetch(client_id)  # the allowance works outside production ...
    assert hits == ["/client.json"]
    settings.PRODUCTION = True
    with pytest.raises(CIMDError, match="refused in production"):
        PlatformMetadataFetcher().fetch(client_id)
    assert hits == ["/client.json"]  # ... and in production nothing is fetched


# --- benchmark --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_benchmark_restores_the_tool_policy_it_changes():
    from bench.common import tool_policy_override
    from mcp_tools.models import ToolPolicy

    opened = {"enabled": True, "noauth": True, "scopes": ""}
    with schema_context("acme"):
        ToolPolicy.objects.filter(tool_name="tenant_info").delete()
    with pytest.raises(RuntimeError), tool_policy_override("acme", "tenant_info", **opened):
        with schema_context("acme"):
            assert ToolPolicy.objects.filter(tool_name="tenant_info", noauth=True).exists()
        raise RuntimeError("the benchmark failed half-way")
    with schema_context("acme"):
        assert not ToolPolicy.objects.filter(tool_name="tenant_info").exists()
        ToolPolicy.objects.create(tool_name="tenant_info", enabled=False, noauth=False, scopes="crm.read")
    with tool_policy_override("acme", "tenant_info", **opened), schema_context("acme"):
        assert ToolPolicy.objects.get(tool_name="tenant_info").noauth is True
    with schema_context("acme"):
        row = ToolPolicy.objects.get(tool_name="tenant_info")
        assert (row.enabled, row.noauth, row.scopes) == (False, False, "crm.read")
