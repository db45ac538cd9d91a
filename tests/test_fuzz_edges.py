"""Property-based fuzzing of every HTTP edge against the live server: whatever arrives (deep nesting,
lone surrogates, NUL, wrong JSON types, odd charsets, long values), the answer is never a 5xx.

Bounded (``MAX_EXAMPLES`` per endpoint family, no deadline; ``FUZZ_EXAMPLES=2000`` for a deep run) so
the suite stays fast. Each example is
one real HTTP request; a failure prints the request hypothesis shrank it to."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.mcp_wire import modern_message
from tests.fuzz_strategies import (
    AUTHORIZE_FIELDS,
    FORM,
    RAW_INVALID,
    REGISTRATION_FIELDS,
    TOKEN_FIELDS,
    authorize_value,
    capped,
    content_type,
    credentials,
    deep,
    deep_object,
    field_dict,
    form_body,
    form_value,
    form_with_raw_bytes,
    grant_type,
    json_value,
    json_with_raw_bytes,
    mcp_body,
    mcp_headers,
    nasty,
    printable,
    raw_form_insert,
    raw_header,
    raw_invalid,
    string_slots,
)
from tests.mcp_raw import HANDSHAKE
from tests.oauth_flow import Browser, Client, authorize_url, obtain_tokens, pkce_pair, signed_in
from tests.support.fuzz import FUZZ

# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client


@pytest.fixture
def session(acme) -> tuple[Client, Browser, str]:
    """A registered client, a browser signed in as a member, and a live crm.read access token."""
    client, browser = signed_in(acme, "member@acme.test")
    token = obtain_tokens(browser, client)["access_token"]
    return client, browser, token


def assert_no_5xx(response: httpx.Response, what: Any) -> None:
    assert response.status_code < 500, (response.status_code, repr(what)[:600], response.text[:300])


# --- MCP --------------------------------------------------------------------------------------------

@FUZZ
@given(body=mcp_body, headers=mcp_headers, auth=st.sampled_from(["none", "valid", "bogus"]), raw=raw_header)
def test_fuzz_mcp(acme, http, session, body, headers, auth, raw):
    sent: dict[str, Any] = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **headers,
    }
    if auth != "none":
        sent["Authorization"] = f"Bearer {session[2] if auth == 'valid' else 'x' * 40}"
    if raw is not None:
        name, value = raw
        sent[name] = (b"Bearer " if name == "Authorization" else b"") + value
    assert_no_5xx(http.post(acme.mcp, content=body, headers=sent), (body[:300], sent))


@pytest.mark.parametrize("era", ["modern", "handshake"])
def test_raw_invalid_utf8_in_any_string_of_a_tool_call_is_a_parse_error(acme, http, session, era):
    """Every string of a valid, authorized ``tools/call`` (names and values, ``_meta`` included) with
    each sequence of ``RAW_INVALID`` in it: a JSON-RPC parse error, never a 500 from deeper down
    (the tool name went into the bearer statement's parameters: ``UnicodeEncodeError`` in psycopg)."""
    params = {"name": "crm_search_contacts", "arguments": {"query": "Ada"}}
    if era == "modern":
        body, headers = modern_message("tools/call", params, meta={"tenant-oauth-mcp/idempotency-key": "fuzz-key"})
    else:
        body = {"jsonrpc": "2.0", "id": "call-1", "method": "tools/call", "params": params}
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": HANDSHAKE}  # fmt: skip
    headers["Authorization"] = f"Bearer {session[2]}"
    assert http.post(acme.mcp, json=body, headers=headers).status_code == 200  # the request as it is works
    wrong = []
    for slot in range(string_slots(body)):
        for raw in RAW_INVALID:
            response = http.post(acme.mcp, content=json_with_raw_bytes(body, raw, slot), headers=headers)
            code = response.json().get("error", {}).get("code") if response.status_code == 400 else None
            if (response.status_code, code) != (400, -32700):
                wrong.append((slot, raw, response.status_code, code))
    assert wrong == [], Counter((status, code) for _, _, status, code in wrong)


def test_raw_invalid_utf8_in_oauth_requests_is_a_parameter_error(acme, http, session):
    """The same bytes in every field of a token request and of a registration: a 400 (401 for
    ``invalid_client``) with an OAuth error code (forms decode them as U+FFFD; registration refuses
    the document)."""
    client, _, _ = session
    fields = {"grant_type": "authorization_code", "client_id": client.client_id, "code": "c" * 30,
              "redirect_uri": client.redirect_uri, "code_verifier": "v" * 50}  # fmt: skip
    for slot in range(2 * len(fields)):
        for raw in RAW_INVALID:
            for escaped in (False, True):
                content = form_with_raw_bytes(fields, raw, slot, escaped)
                response = http.post(acme.url("token/"), content=content, headers={"Content-Type": FORM})
                error = response.json()["error"]
                assert error in {"invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type"}
                # RFC 6749 5.2: 401 for a client that failed to authenticate, 400 for every other error
                expected = 401 if error == "invalid_client" else 400
                assert response.status_code == expected, (slot, raw, escaped, response.status_code, response.text)
    document = {"client_name": "raw", "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}
    for slot in range(string_slots(document)):
        for raw in RAW_INVALID:
            response = http.post(
                acme.url("register/"), content=json_with_raw_bytes(document, raw, slot),
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            assert response.status_code == 400, (slot, raw, response.status_code, response.text[:200])
            assert response.json()["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}


# --- token, revoke, introspect ----------------------------------------------------------------------

def form_request(http, url, fields, ctype, authorization, with_csrf: bool = False, raw=None) -> httpx.Response:
    headers = {"Content-Type": ctype}
    if authorization:
        headers["Authorization"] = authorization
    if with_csrf:
        secret = "a" * 32
        fields = {"csrfmiddlewaretoken": secret, **fields}
        headers["Cookie"] = f"csrftoken={secret}"
    body = form_body(fields) if raw is None else form_with_raw_bytes(fields, *raw)
    return http.post(url, content=body, headers=headers)


@FUZZ
@given(
    fields=field_dict(TOKEN_FIELDS),
    grant=st.one_of(grant_type, nasty),
    ctype=content_type,
    authorization=credentials,
    real_client=st.booleans(),
    raw=raw_form_insert,
)
def test_fuzz_token(acme, http, session, fields, grant, ctype, authorization, real_client, raw):
    fields = {"grant_type": grant, **fields}
    if real_client:
        fields.setdefault("client_id", session[0].client_id)
    response = form_request(http, acme.url("token/"), fields, ctype, authorization, with_csrf=True, raw=raw)
    assert_no_5xx(response, (fields, ctype, authorization, raw))


@FUZZ
@given(
    endpoint=st.sampled_from(["revoke_token/", "introspect/"]),
    fields=field_dict(TOKEN_FIELDS),
    ctype=content_type,
    authorization=credentials,
    real_token=st.booleans(),
    method=st.sampled_from(["POST", "POST", "GET"]),
    raw=raw_form_insert,
)
def test_fuzz_revoke_and_introspect(
    acme, http, session, endpoint, fields, ctype, authorization, real_token, method, raw
):
    if real_token:
        fields.setdefault("token", session[2])
    if method == "GET":
        response = http.get(acme.url(endpoint), params=None, headers={"Authorization": authorization or ""})
    else:
        response = form_request(http, acme.url(endpoint), fields, ctype, authorization, with_csrf=True, raw=raw)
    assert_no_5xx(response, (endpoint, fields, ctype, authorization, raw))


# --- login ------------------------------------------------------------------------------------------


@FUZZ
@given(
    fields=field_dict(["username", "password", "next"]),
    ctype=content_type,
    query=st.dictionaries(st.sampled_from(["next", "x"]), nasty, max_size=2),
    raw=raw_form_insert,
)
def test_fuzz_login(acme, http, fields, ctype, query, raw):
    url = capped(acme.url("login/") + ("?" + form_body(query).decode() if query else ""))
    response = form_request(http, url, fields, ctype, None, with_csrf=True, raw=raw)
    assert_no_5xx(response, (fields, ctype, query, raw))


# --- authorize and consent ---------------------------------------------------------------------------

@FUZZ
@given(
    overrides=st.dictionaries(st.sampled_from(AUTHORIZE_FIELDS), authorize_value, max_size=5),
    post=st.booleans(),
    keep_redirect=st.booleans(),
)
def test_fuzz_authorize_and_consent(acme, session, overrides, post, keep_redirect):
    client, browser, _ = session
    _, challenge = pkce_pair()
    base = dict(
        httpx.URL(authorize_url(client, scope="crm.read", challenge=challenge, prompt="consent")).params.multi_items()
    )
    if keep_redirect:
        overrides.pop("redirect_uri", None)
    fields = {**base, **overrides}
    if post:
        secret = next((c.value for c in browser.http.cookies.jar if c.name == "csrftoken"), None)
        if secret is None:
            secret = "a" * 32
            browser.http.cookies.set("csrftoken", secret)
        response = browser.http.post(
            acme.url("authorize/"), content=form_body({"csrfmiddlewaretoken": secret, **fields}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
    else:
        response = browser.http.get(capped(acme.url("authorize/") + "?" + form_body(fields).decode()))
    assert_no_5xx(response, (post, fields))
    if response.status_code in (301, 302, 303):
        location = response.headers["location"]
        # never a redirect to anything but the client's registered URI, our own pages, or the login page
        assert location.startswith((client.redirect_uri, "/t/acme/", acme.base)), location


# --- routing ----------------------------------------------------------------------------------------


@FUZZ
@given(
    slug=st.one_of(nasty, st.sampled_from(["acme", "globex", "ACME", "pg_catalog", "public", ""])),
    rest=st.one_of(st.sampled_from(["healthz", "mcp", "login/", "token/", "authorize/", "register/"]), nasty),
    host=st.one_of(st.none(), printable, st.sampled_from(["bad host!", "a" * 300, "[::1", "127.0.0.1:99999"])),
    method=st.sampled_from(["GET", "POST", "OPTIONS", "HEAD"]),
)
def test_fuzz_routing(live, http, slug, rest, host, method):
    path = "/t/" + form_value(slug) + "/" + quote(rest, safe="/", errors="surrogatepass")
    headers = {"Host": host} if host is not None else {}
    response = http.request(method, capped(live.url + path), headers=headers)
    assert_no_5xx(response, (method, path, host))


# --- registration -----------------------------------------------------------------------------------

@settings(parent=FUZZ)
@given(
    metadata=st.dictionaries(st.one_of(st.sampled_from(REGISTRATION_FIELDS), nasty), json_value, max_size=6),
    raw=st.one_of(st.none(), deep, deep_object),
    invalid=st.one_of(st.none(), st.tuples(raw_invalid, st.integers(0, 64))),
)
def test_fuzz_registration(acme, http, metadata, raw, invalid):
    document = {"redirect_uris": ["http://127.0.0.1:9/cb"], **metadata}
    if raw is not None:
        body = raw
    elif invalid is not None:
        body = json_with_raw_bytes(document, *invalid)
    else:
        body = json.dumps(document).encode()
    response = http.post(acme.url("register/"), content=body, headers={"Content-Type": "application/json"})
    assert_no_5xx(response, body[:600])
