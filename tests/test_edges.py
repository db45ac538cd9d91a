"""Malformed input at every edge gets a 4xx, never a 500, MCP CORS, and the
consent POST re-checks. Each case is one request over real HTTP to the live server."""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.mcp_raw import MODERN, modern_request
from tests.oauth_flow import (
    Browser,
    Tenant,
    authorize_url,
    hidden_inputs,
    obtain_tokens,
    pkce_pair,
    redirect_params,
    signed_in,
    submit_login,
)
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent
JSON = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def post_mcp(acme: Tenant, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(acme.mcp, content=body, headers={**JSON, **headers}, timeout=20)


def tools_call(name: str) -> bytes:
    params = {
        "name": name,
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "edge-test", "version": "1"},
        },
    }
    # ensure_ascii keeps the NUL / surrogate as a JSON escape, as a client would send it
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).encode()


# --- MCP --------------------------------------------------------------------------------------------


def test_mcp_deep_nesting_is_a_parse_error(acme):
    response = post_mcp(acme, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_mcp_deep_nesting_inside_an_object_is_refused(acme):
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    response = post_mcp(acme, body)
    assert response.status_code == 400


def test_mcp_lone_surrogate_in_an_echoed_method_is_refused(acme):
    response = post_mcp(acme, b'{"jsonrpc":"2.0","id":1,"method":"\\ud800"}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


def test_mcp_surrogate_pairs_still_work(acme):
    # a valid pair (U+1F600) is ordinary text: the method is unknown, not refused as malformed
    response = post_mcp(acme, b'{"jsonrpc":"2.0","id":1,"method":"\\ud83d\\ude00"}')
    assert response.status_code == 404 and response.json()["error"]["code"] == -32601


@pytest.mark.parametrize("name", ["crm_get\u0000contact", "crm_get\udc00contact"])
def test_mcp_nul_or_surrogate_in_tool_name_is_refused_anonymous(acme, name):
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "crm_get_contact"}
    response = post_mcp(acme, tools_call(name), **headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == -32600


def test_mcp_nul_in_tool_name_is_refused_with_a_token(live, acme):
    client, browser = signed_in(acme, "member@acme.test")
    token = obtain_tokens(browser, client)["access_token"]
    headers = {
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "crm_get_contact",
        "Authorization": f"Bearer {token}",
    }
    response = post_mcp(acme, tools_call("crm_get\u0000contact"), **headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == -32600


@pytest.mark.parametrize("request_id", ["true", "false", "1.5", "[1]", '{"a":1}'])
def test_mcp_non_string_non_integer_id_is_invalid_request(acme, request_id):
    response = post_mcp(acme, b'{"jsonrpc":"2.0","id":' + request_id.encode() + b"}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == -32600 and body["id"] is None


def test_mcp_bad_content_length_is_refused(acme):
    with socket.create_connection(("127.0.0.1", int(acme.base.split(":")[2].split("/")[0])), timeout=10) as conn:
        conn.sendall(
            b"POST /t/acme/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: abc\r\nConnection: close\r\n\r\n"
        )
        answer = conn.recv(4096)
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"400", answer


# --- MCP CORS ---------------------------------------------------------------------------------------

ALLOWED = "https://inspector.example"


@pytest.fixture(autouse=True)
def allowed_origins(settings):
    settings.MCP_ALLOWED_ORIGINS = [ALLOWED]


def test_cors_preflight_from_an_allowed_origin(acme):
    response = httpx.options(
        acme.mcp,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version", "mcp-session-id", "last-event-id"} <= allowed


def test_cors_exposes_the_challenge_on_a_401(acme):
    response = modern_request(acme.mcp, "tools/list", headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"www-authenticate", "mcp-protocol-version", "mcp-session-id"} <= exposed
    assert "resource_metadata=" in response.headers["www-authenticate"]


def test_cors_on_protocol_errors_too(acme):
    response = post_mcp(acme, b"{not json", Origin=ALLOWED)
    assert response.status_code == 400 and response.headers["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize("method", ["OPTIONS", "POST"])
def test_cors_refused_origin_gets_403_and_no_cors_headers(acme, method):
    headers = {**JSON, "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = httpx.request(method, acme.mcp, headers=headers, content=b"{}")
    assert response.status_code == 403
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_no_origin_gets_no_cors_headers(acme):
    response = modern_request(acme.mcp, "tools/list")
    assert response.status_code == 401 and "access-control-allow-origin" not in response.headers


# --- token, revoke, introspect ----------------------------------------------------------------------


def test_device_code_grant_without_device_code_is_unsupported(acme):
    response = httpx.post(
        acme.url("token/"), data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": "x"}
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("endpoint", ["token/", "revoke_token/", "introspect/"])
def test_nul_client_id_is_invalid_request(acme, endpoint):
    response = httpx.post(
        acme.url(endpoint), data={"grant_type": "authorization_code", "client_id": "\x00", "token": "t", "code": "c"}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("credentials", ["%00:secret", "client:se%00cret", "cli\x00ent:secret"])
@pytest.mark.parametrize("endpoint", ["introspect/", "token/", "revoke_token/"])
def test_nul_in_basic_credentials_is_refused(acme, endpoint, credentials):
    basic = base64.b64encode(credentials.encode()).decode()
    response = httpx.post(
        acme.url(endpoint),
        data={"token": "t", "grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("endpoint", ["token/", "revoke_token/", "introspect/", "login/"])
@pytest.mark.parametrize("charset", ["utf-16", "latin-1", "cp037", "no-such-charset"])
def test_non_utf8_form_with_a_csrf_cookie_is_a_400(acme, endpoint, charset):
    cookie = "a" * 32  # a well-formed CSRF cookie value
    response = httpx.post(
        acme.url(endpoint),
        content=b"grant_type=refresh_token&csrfmiddlewaretoken=" + cookie.encode(),
        headers={
            "Content-Type": f"application/x-www-form-urlencoded; charset={charset}",
            "Cookie": f"csrftoken={cookie}",
            "Referer": acme.url(endpoint),
        },
    )
    assert response.status_code == 400


def test_utf8_charset_is_still_accepted(acme):
    response = httpx.post(
        acme.url("token/"),
        content=b"grant_type=authorization_code&client_id=nobody&code=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb"
        b"&code_verifier=" + b"v" * 43,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"  # no such client


def test_nul_in_login_form_is_a_400(acme):
    browser = Browser(acme, "member@acme.test")
    response = submit_login(browser.http, acme.url("login/"), "member\x00@acme.test", "x")
    assert response.status_code == 400


# --- authorize and consent ---------------------------------------------------------------------------


def test_code_challenge_longer_than_the_column_is_refused(acme):
    client, browser = signed_in(acme, "member@acme.test")
    response = browser.http.get(authorize_url(client, scope="crm.read", challenge="A" * 129))
    params = redirect_params(response)
    assert params["error"] == "invalid_request" and "code_challenge" in params["error_description"]


@pytest.mark.parametrize("challenge", ["", "A" * 42])
def test_code_challenge_shorter_than_rfc_7636_allows_is_refused(acme, challenge):
    client, browser = signed_in(acme, "member@acme.test")
    response = browser.http.get(authorize_url(client, scope="crm.read", challenge=challenge))
    params = redirect_params(response)
    assert "code" not in params
    assert params["error"] == "invalid_request" and "code_challenge" in params["error_description"]


def test_overlong_state_gets_an_error_page_not_a_redirect(acme):
    client, browser = signed_in(acme, "member@acme.test")
    _, challenge = pkce_pair()
    response = browser.http.get(authorize_url(client, scope="crm.read", challenge=challenge, state="s" * 2049))
    assert response.status_code == 400 and "location" not in response.headers


def _post_consent(acme: Tenant, *, email: str = "member@acme.test", **changes: str) -> httpx.Response:
    """Open the consent page (``prompt=consent``) for a fresh client as ``email``, change ``changes``
    in its form (no ``allow``: the user denies) and submit it."""
    client, browser = signed_in(acme, email)
    _, challenge = pkce_pair()
    url = authorize_url(client, scope="crm.read", challenge=challenge, prompt="consent")
    page = browser.http.get(url)
    assert page.status_code == 200 and 'id="authorizationForm"' in page.text, page.text[:300]
    form = {**hidden_inputs(page.text), **changes}
    return browser.http.post(url.split("?")[0], data=form, headers={"Referer": url})


def test_consent_post_with_unknown_client_is_a_400(acme):
    response = _post_consent(acme, client_id="no-such-client", allow="Authorize")
    assert response.status_code == 400 and "location" not in response.headers


def test_consent_post_with_long_code_challenge_is_refused(acme):
    params = redirect_params(_post_consent(acme, code_challenge="B" * 200, allow="Authorize"))
    assert params["error"] == "invalid_request" and "code" not in params


@pytest.mark.parametrize("redirect_uri", ["http://[::1/cb", "https://evil.example/cb", "http://127.0.0.1:9/other"])
def test_deny_with_a_bad_or_unregistered_redirect_uri_does_not_redirect(acme, redirect_uri):
    response = _post_consent(acme, redirect_uri=redirect_uri)
    assert response.status_code == 400 and "location" not in response.headers


def test_consent_post_with_overlong_state_is_not_echoed(acme):
    response = _post_consent(acme, state="s" * 30_000, allow="Authorize")
    assert response.status_code == 400 and "location" not in response.headers


def test_deny_with_the_registered_redirect_uri_still_redirects(acme):
    params = redirect_params(_post_consent(acme))
    assert params["error"] == "access_denied"


def test_admin_only_scope_is_checked_on_the_consent_post(acme):
    params = redirect_params(_post_consent(acme, scope="crm.read crm.admin", allow="Authorize"))
    assert params["error"] == "access_denied" and "code" not in params
    assert "crm.admin" in params["error_description"]


def test_admin_may_still_grant_admin_scope_on_post(acme):
    granted = _post_consent(acme, email="admin@acme.test", scope="crm.read crm.admin", allow="Authorize")
    params = redirect_params(granted)
    assert "code" in params


def test_client_supplied_approval_prompt_auto_is_ignored(acme):
    client, browser = signed_in(acme, "member@acme.test")
    obtain_tokens(browser, client)  # a live token for this client and scope exists now
    _, challenge = pkce_pair()
    url = authorize_url(client, scope="crm.read", challenge=challenge, prompt="consent", approval_prompt="auto")
    page = browser.http.get(url)
    # DOT's auto mode would redirect with a code here; the platform shows the page prompt=consent asks for
    assert page.status_code == 200 and 'id="authorizationForm"' in page.text


def test_nul_in_an_authorize_parameter_is_a_400(acme):
    client, browser = signed_in(acme, "member@acme.test")
    _, challenge = pkce_pair()
    response = browser.http.get(authorize_url(client, scope="crm.read", challenge=challenge, state="a\x00b"))
    assert response.status_code == 400


# --- routing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["%00", "acme%00", "ACME", "a" * 300, "%ED%A0%80"])
def test_malformed_tenant_slug_is_unknown(live, slug):
    response = httpx.get(f"{live.url}/t/{slug}/healthz")
    assert response.status_code == 404


def test_malformed_tenant_slug_on_mcp_keeps_cors(live):
    response = httpx.post(f"{live.url}/t/%00/mcp", headers={"Origin": ALLOWED})
    assert response.status_code == 404 and response.headers["access-control-allow-origin"] == ALLOWED


# --- logging ----------------------------------------------------------------------------------------


def _raw_request(live, request: bytes) -> bytes:
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        return conn.recv(65536)


def test_bad_host_is_a_400_logged_without_traceback(live, caplog):
    with caplog.at_level(logging.INFO):
        answer = _raw_request(live, b"GET /healthz HTTP/1.1\r\nHost: bad host!\r\nConnection: close\r\n\r\n")
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"400"
    records = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert records and all(r.levelno == logging.WARNING and r.exc_info is None for r in records)


def test_too_many_fields_is_a_400_logged_without_traceback(live, caplog):
    body = "&".join(f"f{i}=1" for i in range(1500))
    with caplog.at_level(logging.INFO):
        response = httpx.post(
            f"{live.url}/t/acme/token/", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    assert response.status_code == 400
    records = [r for r in caplog.records if r.name == "django.security.TooManyFieldsSent"]
    assert records and all(r.levelno == logging.WARNING and r.exc_info is None for r in records)


def test_broken_multipart_is_a_400_logged_without_traceback(live, caplog):
    with caplog.at_level(logging.INFO):
        response = httpx.post(
            f"{live.url}/t/acme/token/",
            content=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data"},  # no boundary
        )
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]


# --- gunicorn's access log (the run command's config, a real gunicorn on loopback) --------------------


def test_gunicorn_access_log_has_no_credentials_or_query(tmp_path):
    app = tmp_path / "stub_app.py"
    app.write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'ok']\n"
    )
    log = tmp_path / "access.log"
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "-c", "python:config.gunicorn", "--access-logfile", str(log), "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--chdir", str(tmp_path), "stub_app:app"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        with_colon = base64.b64encode(b"SECRETUSER:SECRETPASS").decode()
        without_colon = base64.b64encode(b"SECRETNOCOLON").decode()
        httpx.get(f"http://127.0.0.1:{port}/one?code=SECRETCODE", headers={"Authorization": f"Basic {with_colon}"})
        httpx.get(f"http://127.0.0.1:{port}/two", headers={"Authorization": f"Basic {without_colon}"})
        deadline = time.monotonic() + 10
        while "/two" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=15)
    text = log.read_text()
    assert "/one" in text and "/two" in text
    assert "SECRET" not in text and with_colon not in text and without_colon not in text
