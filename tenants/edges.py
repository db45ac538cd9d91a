"""Input validation at the HTTP edges, before anything reaches the database or a library.

PostgreSQL text cannot hold NUL, and a lone UTF-16 surrogate cannot be encoded as UTF-8, so either in
a request value turns into a ``DataError`` or ``UnicodeEncodeError`` (a 500) wherever it lands. Forms
(``application/x-www-form-urlencoded`` and multipart) must be UTF-8: Django refuses any other charset
with a ``BadRequest`` that its own 400 handler re-raises while checking CSRF. These checks answer a
plain 400 first. The MCP endpoint (JSON, outside the middleware stack) checks its body in
``mcp_tools.protocol``; the checks here are cheap (a compiled regex per value) and skip requests that
carry no query string, form body or Basic credentials.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

from django.http import HttpRequest

BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
UTF8 = frozenset({"utf-8", "utf8"})


def has_bad_chars(value: str) -> bool:
    """NUL or an unpaired surrogate anywhere in ``value``."""
    return BAD_CHARS.search(value) is not None


def _any_bad(items: Iterable[tuple[str, list[str]]]) -> bool:
    return any(has_bad_chars(key) or any(has_bad_chars(v) for v in values) for key, values in items)


def basic_credentials_problem(header: str) -> bool:
    """True when HTTP Basic credentials decode (as DOT decodes them) to a NUL or a lone surrogate."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip()).decode("utf-8")
    except (binascii.Error, ValueError):
        return False  # undecodable: DOT refuses it as invalid_client
    return any(has_bad_chars(unquote_plus(part)) for part in decoded.split(":", 1))


def request_problem(request: HttpRequest) -> str | None:
    """Why this (non-MCP) request is refused at the edge, or None."""
    if request.META.get("QUERY_STRING") and _any_bad(request.GET.lists()):
        return "NUL and unpaired surrogates are not allowed in query parameters"
    authorization = request.META.get("HTTP_AUTHORIZATION")
    if authorization and basic_credentials_problem(authorization):
        return "NUL and unpaired surrogates are not allowed in client credentials"
    if request.method == "POST" and request.content_type in FORM_TYPES:
        charset = request.content_params.get("charset")
        if charset is not None and charset.strip().lower() not in UTF8:
            return "form bodies must be UTF-8"
        if _any_bad(request.POST.lists()):
            return "NUL and unpaired surrogates are not allowed in form fields"
    return None
