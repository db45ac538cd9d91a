"""The edge fuzzer's request vocabulary (hypothesis strategies): nasty strings, lone surrogates, NUL,
raw invalid UTF-8 and CESU-8 bytes, deep nesting, odd charsets and content types, and the fields of
each endpoint family. ``tests/test_fuzz_edges.py`` sends them to the live test server;
``tools/fuzz_run.py`` to a running platform, scaled up. Imports nothing that needs Django settings."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from tests.mcp_raw import HANDSHAKE, MODERN

# --- values -------------------------------------------------------------------------------------

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


def string_slots(value: Any) -> int:
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return sum(1 + string_slots(v) for v in value.values())
    if isinstance(value, list):
        return sum(string_slots(v) for v in value)
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
    count = string_slots(document)
    marked = _mark(document, slot % count)[0] if count else document
    encoded = json.dumps(marked, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return encoded.replace(_SLOT.encode(), raw) if count else encoded + raw


def form_with_raw_bytes(fields: dict[str, str], raw: bytes, slot: int, escaped: bool) -> bytes:
    """A form body with ``raw`` after one name or value (``slot`` modulo their number), as the bytes
    themselves or percent-escaped."""
    parts = [form_value(part).encode() for pair in fields.items() for part in pair] or [b"x", b""]
    parts[slot % len(parts)] += quote(raw, safe="").encode() if escaped else raw
    return b"&".join(parts[i] + b"=" + parts[i + 1] for i in range(0, len(parts), 2))


# (raw bytes, which field, escaped or not) to put into a form body, or none
raw_form_insert = st.one_of(st.none(), st.tuples(raw_invalid, st.integers(0, 16), st.booleans()))


def form_value(value: str) -> str:
    return quote(value, safe="", encoding="utf-8", errors="surrogatepass")


def capped(url: str) -> str:
    """Long values stay long, but within what an HTTP client will send in a request line."""
    return url[:URL_MAX]


def form_body(fields: dict[str, str]) -> bytes:
    return "&".join(f"{form_value(k)}={form_value(v)}" for k, v in fields.items()).encode()


def basic(user: str, password: str, colon: bool = True) -> str:
    raw = f"{form_value(user)}:{form_value(password)}" if colon else user
    return ("Basic " + base64.b64encode(raw.encode("utf-8", "surrogatepass")).decode()).strip()


charset = st.sampled_from([None, "utf-8", "UTF-8", "utf-16", "latin-1", "cp037", "no-such-charset", "utf-7", ""])
content_type = st.one_of(
    charset.map(lambda c: "application/x-www-form-urlencoded" + (f"; charset={c}" if c is not None else "")),
    st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=x", "application/json", "text/plain"]),
)


def field_dict(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.one_of(st.sampled_from(names), short_text), nasty, max_size=6)



# --- MCP ------------------------------------------------------------------------------------------

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


# --- token, revoke, introspect --------------------------------------------------------------------

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


# --- authorize and consent ------------------------------------------------------------------------

AUTHORIZE_FIELDS = [
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
    "resource", "prompt", "approval_prompt", "nonce", "allow",
]  # fmt: skip
authorize_value = st.one_of(
    nasty,
    st.sampled_from(["code", "S256", "plain", "crm.read", "crm.read crm.admin", "consent", "auto", "Authorize"]),
    st.integers(1, 300).map(lambda n: "A" * n),
)


# --- registration ---------------------------------------------------------------------------------

REGISTRATION_FIELDS = [
    "client_name", "redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "scope",
    "application_type", "software_id", "client_uri", "logo_uri", "contacts",
]  # fmt: skip
