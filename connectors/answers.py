"""A provider's answers, validated before anything of them is stored, used or shown.

Providers answer garbage now and then (a proxy's HTML error page, a half-deployed release, a hostile
endpoint a tenant admin typed): JSON nested thousands deep, wrong types, NaN, tokens with control
characters that would split an HTTP header, ``expires_in`` of 10**30, strings PostgreSQL refuses
(NUL, unpaired surrogates). Whatever arrives, the caller gets a ``TokenSet`` / a claims dict of
plain, bounded values, or a classified ``ConnectorError``: ``InvalidAnswer`` (``invalid_response``,
transient: the provider is misbehaving, the account is kept and backs off) or the provider's own
OAuth error. A refresh token that did arrive in an otherwise unusable answer rides on the exception
(``InvalidAnswer.refresh_token``): the provider has rotated, so it must be kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from connectors import timing
from connectors.errors import ConnectorError, ProviderUnavailable

MAX_DEPTH = 16  # token and userinfo answers are one or two levels deep
MAX_TOKEN_ANSWER_BYTES = 64 * 1024
MAX_USERINFO_BYTES = 256 * 1024
MAX_TOKEN_CHARS = 16 * 1024
MAX_ID_TOKEN_CHARS = 32 * 1024
MAX_SCOPE_CHARS = 4096
MAX_CLAIM_CHARS = 1024
OAUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"})

# RFC 6749 appendix A VSCHAR without the space (a space would split "Bearer <token>")
_TOKEN = re.compile(r"[\x21-\x7e]+")
_JWT = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]*){2,4}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 3.3 NQCHAR
_DIGITS = re.compile(r"-?[0-9]{1,15}")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class InvalidAnswer(ProviderUnavailable):
    """The provider answered something unusable. Transient (it is the provider's fault and it may be
    fixed); ``refresh_token``: a valid rotated refresh token found in the answer, to keep."""

    def __init__(self, message: str, *, refresh_token: str | None = None) -> None:
        super().__init__("invalid_response", message)
        self.refresh_token = refresh_token

    def __repr__(self) -> str:  # never the token
        return f"InvalidAnswer({str(self)!r})"


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    token_type: str
    expires_in: int | None  # clamped into timing's range; None: the provider did not say
    scopes: list[str] | None  # None: the provider did not say (= as requested)
    id_token: str | None = field(repr=False, default=None)


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped), without parsing it."""
    steps = [1 if c in b"[{" else -1 for c in _BRACKETS.findall(_STRING.sub(b'""', body))]
    return max(accumulate(steps), default=0)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a provider's JSON within bounds; ``ValueError`` for anything else (too big, too deep,
    not UTF-8, NaN/Infinity, not JSON)."""
    if len(body) > max_bytes:
        raise ValueError("the answer is too large")
    if nesting_depth(body) > max_depth:
        raise ValueError("the answer is nested too deeply")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError("the answer is not JSON") from exc


def clean_text(value: Any, *, max_chars: int) -> str | None:
    """A string PostgreSQL, JSON and HTML can all carry, or None."""
    if not isinstance(value, str) or len(value) > max_chars or _BAD_TEXT.search(value):
        return None
    return value


def _token(value: Any, *, max_chars: int = MAX_TOKEN_CHARS) -> str | None:
    if isinstance(value, str) and len(value) <= max_chars and _TOKEN.fullmatch(value):
        return value
    return None


def expires_in(value: Any) -> int | None:
    """``expires_in`` as seconds clamped into a sane range; None when absent. ``ValueError`` for a
    value of the wrong type (a boolean, an object, text that is not a number)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expires_in is a boolean")
    if isinstance(value, int):
        return timing.clamp_lifetime(max(-(10**15), min(10**15, value)))
    if isinstance(value, float):  # finite: NaN and Infinity never parse
        return timing.clamp_lifetime(int(max(-1e15, min(1e15, value))))
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return timing.clamp_lifetime(int(value.strip()))
    raise ValueError("expires_in is not a number")


def scopes(value: Any, split) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_SCOPE_CHARS:
        found = split(value)
    elif isinstance(value, list) and len(value) <= 200 and all(isinstance(s, str) for s in value):
        found = list(value)
    else:
        raise ValueError("scope is neither a string nor a list of strings")
    if len(found) > 200 or not all(_SCOPE_TOKEN.fullmatch(s) and len(s) <= 256 for s in found):
        raise ValueError("scope holds values that are not scope tokens")
    return found


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: treat as "no hint", back off on our own schedule
    return min(max(0.0, seconds), 86400.0) if seconds == seconds else None


def token_answer(status: int, body: bytes, headers: dict[str, str], split_scopes) -> TokenSet:
    """The token endpoint's answer (authorization code or refresh), validated field by field."""
    if status == 429 or status >= 500:
        code = "rate_limited" if status == 429 else "provider_unavailable"
        raise ProviderUnavailable(
            code, f"the provider answered HTTP {status}", retry_after=retry_after(headers.get("retry-after"))
        )
    try:
        data = parse_json(body, max_bytes=MAX_TOKEN_ANSWER_BYTES)
    except ValueError as exc:
        if status == 200:
            raise InvalidAnswer(f"the token answer is unusable: {exc}") from None
        refused = f"the provider refused the token request (HTTP {status})"
        raise ConnectorError("token_request_failed", refused) from None
    if not isinstance(data, dict):
        if status == 200:
            raise InvalidAnswer("the token answer is not a JSON object")
        raise ConnectorError("token_request_failed", f"the provider refused the token request (HTTP {status})")
    # an "error" member is a refusal whatever the status (GitHub answers 200 with one; Slack "ok": false)
    error = data.get("error")
    if error is not None or status != 200 or data.get("ok") is False:
        code = error if isinstance(error, str) and error in OAUTH_ERRORS else "token_request_failed"
        raise ConnectorError(code, f"the provider refused the token request ({code})")
    refresh = _token(data.get("refresh_token"))
    try:
        if data.get("refresh_token") is not None and refresh is None:
            raise ValueError("refresh_token is not a token")
        access = _token(data.get("access_token"))
        if access is None:
            raise ValueError("access_token is missing or not a token")
        token_type = data.get("token_type")
        if token_type is None:
            token_type = "Bearer"
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ValueError("token_type is not Bearer")
        id_token = data.get("id_token")
        if id_token is not None and not (
            isinstance(id_token, str) and len(id_token) <= MAX_ID_TOKEN_CHARS and _JWT.fullmatch(id_token)
        ):
            raise ValueError("id_token is not a JWT")
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            token_type="Bearer",
            expires_in=expires_in(data.get("expires_in")),
            scopes=scopes(data.get("scope"), split_scopes),
            id_token=id_token,
        )
    except ValueError as exc:
        raise InvalidAnswer(f"the token answer is unusable: {exc}", refresh_token=refresh) from None


def claims(data: Any, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Userinfo (or ID token) claims reduced to plain values: strings without NUL or unpaired
    surrogates (bounded), booleans, integers and short lists of such strings (an ID token's
    ``aud``); other members are dropped. A ``required`` claim
    (the subject, the account id) that is present but unusable refuses the answer."""
    if not isinstance(data, dict):
        raise InvalidAnswer("the claims are not a JSON object")
    kept: dict[str, Any] = {}
    for name, value in data.items():
        if clean_text(name, max_chars=128) is None:
            continue
        if isinstance(value, bool) or (isinstance(value, int) and -(2**63) < value < 2**63):
            kept[name] = value
        elif (text := clean_text(value, max_chars=MAX_CLAIM_CHARS)) is not None:
            kept[name] = text
        elif isinstance(value, list) and len(value) <= 100:
            items = [clean_text(item, max_chars=MAX_CLAIM_CHARS) for item in value]
            if all(item is not None for item in items):
                kept[name] = items
    for name in required:
        if name in data and name not in kept:
            raise InvalidAnswer(f"the {name} claim is unusable")
    return kept


def userinfo_answer(status: int, body: bytes, *, required: tuple[str, ...]) -> dict[str, Any]:
    if status == 401:
        raise ConnectorError("invalid_token", "the provider refused the access token")
    if status == 429 or status >= 500:
        raise ProviderUnavailable("provider_unavailable", f"userinfo answered HTTP {status}")
    if status != 200:
        raise ConnectorError("userinfo_failed", f"userinfo answered HTTP {status}")
    try:
        data = parse_json(body, max_bytes=MAX_USERINFO_BYTES)
    except ValueError as exc:
        raise InvalidAnswer(f"the userinfo answer is unusable: {exc}") from None
    return claims(data, required=required)
