"""The client-metadata policy every client passes, however it arrives: RFC 7591 registration, an
RFC 7592 update and a Client ID Metadata Document.

Pure functions over the metadata dict (no database): :func:`check_client_metadata` either returns
what the platform records about the client (:class:`ClientFacts`) or raises
:class:`ClientMetadataError` with an RFC 7591 §3.2.2 error code.

- Every string in the document: no NUL, no lone surrogate (PostgreSQL cannot store either).
- ``redirect_uris``: a non-empty array of URIs; no whitespace or control characters (DOT stores the
  list space-joined and splits on whitespace, so ``"https://a/cb http://evil/cb"`` would register
  two), a valid port, no fragment, no wildcard, no user information; ``https``, or ``http`` on a
  loopback address for ``native`` clients only (RFC 8252).
- ``application_type``: ``web`` or ``native``; when absent it is inferred from the redirect URIs
  (loopback ``http`` or a private-use scheme means ``native``).
- ``grant_types``: strings, ``authorization_code`` with optional ``refresh_token``, nothing else.
- ``client_name``, ``software_id``: strings that fit their columns; ``scope``: a space-separated
  string of scope tokens (RFC 7591 §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from oauth.models import ChallengeChannel

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
ALLOWED_GRANT_TYPES = {"authorization_code", "refresh_token"}
APPLICATION_TYPES = ("web", "native")
MAX_NAME = 255  # Application.name, ClientProfile.software_id
MAX_REDIRECT_URI = 2000
MAX_REDIRECT_URIS = 20
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token
_BAD_URI_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f]|\s")


class ClientMetadataError(ValueError):
    """A refused client document; ``error`` is an RFC 7591 error code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class ClientFacts:
    """What the policy derived from an accepted document."""

    application_type: str
    redirect_uris: tuple[str, ...]
    software_id: str
    declared_channel: str | None  # the document's own ``mcp_challenge_channel``, when it has one


def _invalid(description: str) -> ClientMetadataError:
    return ClientMetadataError("invalid_client_metadata", description)


def _bad_redirect(description: str) -> ClientMetadataError:
    return ClientMetadataError("invalid_redirect_uri", description)


def is_storable_text(value: str) -> bool:
    """PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8."""
    return "\x00" not in value and not any("\ud800" <= ch <= "\udfff" for ch in value)


def _unstorable_path(value: object, path: str = "", depth: int = 0) -> str | None:
    if depth > 20:
        return path or "the document"
    if isinstance(value, str):
        return None if is_storable_text(value) else (path or "the document")
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not is_storable_text(str(key)):
                return path or "a member name"
            found = _unstorable_path(item, where, depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_path(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
    return None


def redirect_uri_problem(uri: str, application_type: str) -> str | None:
    if len(uri) > MAX_REDIRECT_URI:
        return f"redirect URIs are at most {MAX_REDIRECT_URI} characters"
    if _BAD_URI_CHAR.search(uri) or not is_storable_text(uri):
        return "redirect URIs must not contain whitespace or control characters"
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises ValueError for a port outside 0-65535
    except ValueError:
        return "redirect URI is not a valid URI (bad host or port)"
    if port == 0:
        return "redirect URI port 0 is not a port a client listens on"
    if parts.fragment or "#" in uri:
        return "redirect URIs must not contain a fragment"
    if "*" in uri:
        return "redirect URIs must be exact (no wildcards)"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "redirect URIs must not contain user information"
    if not parts.hostname:
        return "redirect URI has no host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        if application_type != "native":
            return "loopback http redirect URIs are for native clients (application_type 'native')"
        return None
    return "redirect URIs must use https, or http on a loopback address (RFC 8252)"


def is_loopback_http(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def is_private_use_scheme(uri: str) -> bool:
    """RFC 8252 §7.1: a reverse-domain scheme such as ``com.example.app:/cb``."""
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    return "." in scheme


def infer_application_type(uris: list[str]) -> str:
    """OpenID registration defaults ``application_type`` to ``web``, but MCP clients that run on the
    user's machine (TS SDK 1.x, the Inspector, IDE clients) register loopback redirects without
    saying ``native``. Such redirect URIs only make sense for a native client, so infer it."""
    if any(is_loopback_http(u) or is_private_use_scheme(u) for u in uris):
        return "native"
    return "web"


def _redirect_uris(metadata: dict) -> list[str]:
    uris = metadata.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise _bad_redirect("redirect_uris must be a non-empty array of strings")
    if len(uris) > MAX_REDIRECT_URIS:
        raise _bad_redirect(f"at most {MAX_REDIRECT_URIS} redirect URIs")
    return uris


def _application_type(metadata: dict, uris: list[str]) -> str:
    declared = metadata.get("application_type")
    if declared is None:
        return infer_application_type(uris)
    if not isinstance(declared, str) or declared not in APPLICATION_TYPES:
        raise _invalid("application_type must be 'web' or 'native'")
    return declared


def _check_grant_types(metadata: dict) -> None:
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types):
        raise _invalid("grant_types must be an array of strings")
    if "authorization_code" not in grant_types or not set(grant_types) <= ALLOWED_GRANT_TYPES:
        raise _invalid("grant_types must be authorization_code (and refresh_token)")
    response_types = metadata.get("response_types", ["code"])
    if not isinstance(response_types, list) or not response_types or any(r != "code" for r in response_types):
        raise _invalid('response_types must be ["code"]')


def _optional_string(metadata: dict, key: str, limit: int) -> str:
    value = metadata.get(key, "")
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string")
    if len(value) > limit:
        raise _invalid(f"{key} is at most {limit} characters")
    return value


def _check_scope(metadata: dict) -> None:
    if "scope" not in metadata:
        return
    scope = metadata["scope"]
    if not isinstance(scope, str) or not all(_SCOPE_TOKEN.match(token) for token in scope.split(" ") if token):
        raise _invalid("scope must be a string of space-separated scope values (RFC 7591 §2)")


def _declared_channel(metadata: dict) -> str | None:
    declared = metadata.get("mcp_challenge_channel")
    if declared is None:
        return None
    if not isinstance(declared, str) or declared not in ChallengeChannel.values:
        raise _invalid(f"mcp_challenge_channel must be one of {', '.join(ChallengeChannel.values)}")
    return declared


def check_client_metadata(metadata: object) -> ClientFacts:
    """Apply the platform's policy to a client document; raise :class:`ClientMetadataError`."""
    if not isinstance(metadata, dict):
        raise _invalid("client metadata must be a JSON object")
    where = _unstorable_path(metadata)
    if where:
        code = "invalid_redirect_uri" if where.startswith("redirect_uris") else "invalid_client_metadata"
        raise ClientMetadataError(code, f"{where} contains NUL, a lone surrogate or is nested too deeply")
    uris = _redirect_uris(metadata)
    application_type = _application_type(metadata, uris)
    _check_grant_types(metadata)
    _optional_string(metadata, "client_name", MAX_NAME)
    software_id = _optional_string(metadata, "software_id", MAX_NAME)
    _check_scope(metadata)
    for uri in uris:
        problem = redirect_uri_problem(uri, application_type)
        if problem:
            raise _bad_redirect(problem)
    return ClientFacts(
        application_type=application_type,
        redirect_uris=tuple(uris),
        software_id=software_id,
        declared_channel=_declared_channel(metadata),
    )
