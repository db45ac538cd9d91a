"""Property-based fuzzing of every HTTP edge against the live server: whatever arrives (deep nesting,
lone surrogates, NUL, wrong JSON types, odd charsets, long values), the answer is never a 5xx.

Bounded (``MAX_EXAMPLES`` per endpoint family, no deadline; ``FUZZ_EXAMPLES=2000`` for a deep run) so
the suite stays fast. Each example is
one real HTTP request; a failure prints the request hypothesis shrank it to."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.mcp_wire import modern_message
from tests.mcp_raw import HANDSHAKE, MODERN
from tests.oauth_flow import Browser, Client, authorize_url, obtain_tokens, pkce_pair, signed_in

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))  # per endpoint family; raise it for a deeper run
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # CI explores the same examples every run, so a red run is reproducible; local runs draw new ones
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies -------------------------------------------------------------------------------------

SPECIAL = ["\x00", "\ud800", "\udfff", "a\udc00b", "\ufeff", "\u2028", "%00", "%ED%A0%80", "\\u0000", "' OR 1=1 --"]
any_char = st.one_of(st.characters(), st.characters(codec=None, categories=["Cs"]), st.sampled_from(["\x00"]))
short_text = st.text(any_char, max_size=24)
long_text = st.builds(lambda c, n: c * n, st.sampled_from(["A", "\x00", "é", "\ud800", "/"]), st.integers(100, 4000))
nasty = st.one_of(short_text, st.sampled_from(SPECIAL), long_text)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    nasty,
)
json_value = st.recursive(
    scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty, inner, max_size=4), max_leaves=16
)
deep = st.integers(200, 6000).map(lambda n: ("[" * n + "]" * n).encode())
deep_object = st.integers(200, 6000).map(lambda n: ('{"a":' * n + "1" + "}" * n).encode())
# header values: printable ASCII without the surrounding whitespace HTTP clients refuse to send
URL_MAX = 16_000
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)


# Raw bytes no UTF-8 decoder may accept (RFC 3629), spliced into the encoded request, not escaped:
# CESU-8 surrogates (a lone high, a lone low, an encoded pair), an overlong NUL, a stray continuation
# byte, a truncated sequence, bytes that never occur, a code point above U+10FFFF.
RAW_INVALID = [
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb2\xa9", b"\xc0\x80", b"\x80", b"\xe2\x82", b"\xff\xfe",
    b"\xf4\x90\x80\x80",
]  # fmt: skip
raw_invalid = st.sampled_from(RAW_INVALID)
FORM = "application/x-www-form-urlencoded"
_SLOT = "\ue000"  # a private-use character marking where the raw bytes go (its UTF-8: EE 80 80)


def _string_slots(value: Any) -> int:
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return sum(1 + _string_slots(v) for v in value.values())
    if isinstance(value, list):
        return sum(_string_slots(v) for v in value)
    return 0


def _mark(value: Any, slot: int) -> tuple[Any, int]:
    """``value`` with the ``slot``-th string (keys included, depth first) marked; the slots left."""
    if isinstance(value, str):
        return (value + _SLOT if slot == 0 else value), slot - 1
    if isinstance(value, list):
        marked = []
        for item in value:
            item, slot = _mark(item, slot)
            marked.append(item)
        return marked, slot
    if isinstance(value, dict):
        marked_dict = {}
        for key, item in value.items():
            if slot == 0:
                key = key + _SLOT
            slot -= 1
            item, slot = _mark(item, slot)
            marked_dict[key] = item
        return marked_dict, slot
    return value, slot


def json_with_raw_bytes(document: Any, raw: bytes, slot: int) -> bytes:
    """``document`` as UTF-8 JSON (not ASCII-escaped, so its own lone surrogates travel as CESU-8) with
    ``raw`` inside one of its strings (``slot`` modulo their number), or after it when it has none."""
    count = _string_slots(document)
    marked = _mark(document, slot % count)[0] if count else document
    encoded = json.dumps(marked, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return encoded.replace(_SLOT.encode(), raw) if count else encoded + raw


def form_with_raw_bytes(fields: dict[str, str], raw: bytes, slot: int, escaped: bool) -> bytes:
    """A form body with ``raw`` after one name or value (``slot`` modulo their number), as the bytes
    themselves or percent-escaped."""
    parts = [_form_value(part).encode() for pair in fields.items() for part in pair] or [b"x", b""]
    parts[slot % len(parts)] += quote(raw, safe="").encode() if escaped else raw
    return b"&".join(parts[i] + b"=" + parts[i + 1] for i in range(0, len(parts), 2))


# (raw bytes, which field, escaped or not) to put into a form body, or none
raw_form_insert = st.one_of(st.none(), st.tuples(raw_invalid, st.integers(0, 16), st.booleans()))


def _form_value(value: str) -> str:
    return quote(value, safe="", encoding="utf-8", errors="surrogatepass")


def capped(url: str) -> str:
    """Long values stay long, but within what an HTTP client will send in a request line."""
    return url[:URL_MAX]


def form_body(fields: dict[str, str]) -> bytes:
    return "&".join(f"{_form_value(k)}={_form_value(v)}" for k, v in fields.items()).encode()


def basic(user: str, password: str, colon: bool = True) -> str:
    raw = f"{_form_value(user)}:{_form_value(password)}" if colon else user
    return ("Basic " + base64.b64encode(raw.encode("utf-8", "surrogatepass")).decode()).strip()


charset = st.sampled_from([None, "utf-8", "UTF-8", "utf-16", "latin-1", "cp037", "no-such-charset", "utf-7", ""])
content_type = st.one_of(
    charset.map(lambda c: "application/x-www-form-urlencoded" + (f"; charset={c}" if c is not None else "")),
    st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=x", "application/json", "text/plain"]),
)


def field_dict(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.one_of(st.sampled_from(names), short_text), nasty, max_size=6)


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

mcp_method = st.one_of(
    st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "server/discover", "notifications/x"]), nasty
)
tool_name = st.one_of(
    st.sampled_from(["crm_search_contacts", "crm_get_contact", "crm_create_note", "tenant_info"]), nasty
)
mcp_params = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {"name": tool_name, "arguments": json_value},
        optional={
            "_meta": st.one_of(
                json_value,
                st.just(
                    {
                        "io.modelcontextprotocol/protocolVersion": MODERN,
                        "io.modelcontextprotocol/clientCapabilities": {},
                        "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
                    }
                ),
            ),
            "protocolVersion": json_value,
        },
    ),
)
mcp_message = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.one_of(st.just("2.0"), json_value),
        "id": json_value,
        "method": mcp_method,
        "params": mcp_params,
        "result": json_value,
    },
)
mcp_body = st.one_of(
    mcp_message.map(lambda m: json.dumps(m).encode()),  # ensure_ascii: NUL and surrogates travel as escapes
    deep,
    deep_object,
    st.binary(max_size=64),
    st.lists(mcp_message, max_size=3).map(lambda m: json.dumps(m).encode()),
    st.builds(json_with_raw_bytes, mcp_message, raw_invalid, st.integers(0, 64)),
)
mcp_headers = st.fixed_dictionaries(
    {},
    optional={
        "MCP-Protocol-Version": st.one_of(st.sampled_from([MODERN, HANDSHAKE, "2025-06-18"]), printable),
        "Mcp-Method": st.one_of(mcp_method.filter(str.isprintable).filter(str.isascii), printable),
        "Mcp-Name": printable,
        "Origin": st.sampled_from(["https://chatgpt.com", "https://evil.example", "null"]),
        "Content-Type": st.sampled_from(["application/json", "application/json; charset=utf-16", "text/plain"]),
    },
)


# a header value with raw bytes: gunicorn and Django hand it over as Latin-1 text
raw_header = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["Authorization", "Mcp-Name", "Mcp-Method", "MCP-Protocol-Version", "Origin"]), raw_invalid
    ),
)


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
    for slot in range(_string_slots(body)):
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
                assert response.status_code in (400, 401), (slot, raw, escaped, response.status_code, response.text)
                assert response.json()["error"] in {"invalid_request", "invalid_client", "invalid_grant",
                                                    "unsupported_grant_type"}, response.text[:200]  # fmt: skip
    document = {"client_name": "raw", "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}
    for slot in range(_string_slots(document)):
        for raw in RAW_INVALID:
            response = http.post(
                acme.url("register/"), content=json_with_raw_bytes(document, raw, slot),
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            assert response.status_code == 400, (slot, raw, response.status_code, response.text[:200])
            assert response.json()["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}


# --- token, revoke, introspect ----------------------------------------------------------------------

TOKEN_FIELDS = [
    "grant_type", "client_id", "client_secret", "code", "redirect_uri", "code_verifier", "refresh_token",
    "scope", "resource", "device_code", "token", "token_type_hint",
]  # fmt: skip
grant_type = st.sampled_from(
    [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
)
credentials = st.one_of(
    st.none(),
    st.builds(basic, nasty, nasty),
    st.builds(lambda u: basic(u, "", colon=False), short_text),
    printable.map(lambda v: ("Basic " + v).strip()),
)


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

AUTHORIZE_FIELDS = [
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
    "resource", "prompt", "approval_prompt", "nonce", "allow",
]  # fmt: skip
authorize_value = st.one_of(
    nasty,
    st.sampled_from(["code", "S256", "plain", "crm.read", "crm.read crm.admin", "consent", "auto", "Authorize"]),
    st.integers(1, 300).map(lambda n: "A" * n),
)


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
    path = "/t/" + _form_value(slug) + "/" + quote(rest, safe="/", errors="surrogatepass")
    headers = {"Host": host} if host is not None else {}
    response = http.request(method, capped(live.url + path), headers=headers)
    assert_no_5xx(response, (method, path, host))


# --- registration -----------------------------------------------------------------------------------

REGISTRATION_FIELDS = [
    "client_name", "redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "scope",
    "application_type", "software_id", "client_uri", "logo_uri", "contacts",
]  # fmt: skip


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
