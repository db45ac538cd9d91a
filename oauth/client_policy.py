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
- ``grant_types``: strings, ``authorization_code`` with optional ``refresh_token``, and the JWT bearer
  grant (ID-JAGs, ``oauth.id_jag``) where the caller allows it: a confidential client registering at
  a tenant that trusts an identity provider's ID-JAGs. Nothing else (a metadata document may list
  more; the platform ignores what it does not offer, and records whether it lists the JWT bearer
  grant: ``ClientFacts.jwt_bearer``).
- ``client_name``, ``software_id``: strings that fit their columns; ``scope``: a space-separated
  string of scope tokens (RFC 7591 §2).

Client ID Metadata Documents also declare how the client authenticates (:func:`cimd_authentication`):
``none`` (a public client), or ``private_key_jwt`` with its keys inline (``jwks``) or at an https
``jwks_uri``, and optionally ``token_endpoint_auth_signing_alg`` (RS256, PS256 or ES256). Shared-secret
methods are refused: a document is public, so nothing in it can be a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from oauth.grant_types import JWT_BEARER
from oauth.jwks import ASSERTION_ALGORITHMS, KeySetError, check_key_set
from oauth.models import ChallengeChannel, TokenEndpointAuthMethod

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
    jwt_bearer: bool = False  # it lists the JWT bearer grant (ID-JAGs), and the policy accepted it


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


def _check_grant_types(metadata: dict, *, document: bool, jwt_bearer_allowed: bool) -> bool:
    """Raise for grant types the policy refuses; whether the JWT bearer grant is among them."""
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types):
        raise _invalid("grant_types must be an array of strings")
    if "authorization_code" not in grant_types:
        raise _invalid("grant_types must include authorization_code")
    jwt_bearer = JWT_BEARER in grant_types
    if not document and jwt_bearer and not jwt_bearer_allowed:
        raise _invalid(
            f"grant type {JWT_BEARER} (ID-JAGs) is offered to confidential clients of a tenant that trusts an "
            "identity provider's ID-JAGs only"
        )
    if not document and not set(grant_types) - {JWT_BEARER} <= ALLOWED_GRANT_TYPES:
        raise _invalid("grant_types must be authorization_code (and refresh_token)")
    response_types = metadata.get("response_types", ["code"])
    if not isinstance(response_types, list) or not response_types or any(r != "code" for r in response_types):
        raise _invalid('response_types must be ["code"]')
    return jwt_bearer


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


def offered_grant_types(metadata: dict) -> list[str]:
    """The grant types of an accepted metadata document that the platform offers."""
    return [g for g in metadata.get("grant_types", ["authorization_code"]) if g in ALLOWED_GRANT_TYPES]


def check_client_metadata(metadata: object, *, document: bool = False, jwt_bearer_allowed: bool = False) -> ClientFacts:
    """Apply the platform's policy to a client document; raise :class:`ClientMetadataError`.

    ``document``: a Client ID Metadata Document. A client registering (RFC 7591) asks for grant types,
    so one the platform does not offer is refused (the JWT bearer grant unless ``jwt_bearer_allowed``);
    a metadata document is published once for every authorization server, so grant types the platform
    does not offer are ignored (``offered_grant_types``) as long as ``authorization_code`` is among
    them. A document listing the JWT bearer grant (Claude's does) is recorded as such; whether the
    client may use it is decided at the token endpoint (confidential clients only)."""
    if not isinstance(metadata, dict):
        raise _invalid("client metadata must be a JSON object")
    where = _unstorable_path(metadata)
    if where:
        code = "invalid_redirect_uri" if where.startswith("redirect_uris") else "invalid_client_metadata"
        raise ClientMetadataError(code, f"{where} contains NUL, a lone surrogate or is nested too deeply")
    uris = _redirect_uris(metadata)
    application_type = _application_type(metadata, uris)
    jwt_bearer = _check_grant_types(metadata, document=document, jwt_bearer_allowed=jwt_bearer_allowed)
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
        jwt_bearer=jwt_bearer,
    )


@dataclass(frozen=True)
class ClientAuthentication:
    """How a CIMD client authenticates at the token and revocation endpoints."""

    method: str  # TokenEndpointAuthMethod: "" (public, as DOT keeps every CIMD client) or private_key_jwt
    jwks: dict | None = None  # the document's own key set (checked)
    jwks_uri: str = ""
    signing_alg: str = ""

    @property
    def private_key_jwt(self) -> bool:
        return self.method == TokenEndpointAuthMethod.PRIVATE_KEY_JWT


PUBLIC = ClientAuthentication(TokenEndpointAuthMethod.DOT)


def _jwks_uri_problem(uri: object) -> str | None:
    if not isinstance(uri, str) or len(uri) > MAX_REDIRECT_URI or _BAD_URI_CHAR.search(uri):
        return f"jwks_uri is a URL of at most {MAX_REDIRECT_URI} characters"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return "jwks_uri is not a valid URL"
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password or parts.fragment:
        return "jwks_uri must be an https URL without user information or fragment"
    return None


def cimd_authentication(metadata: dict, *, private_key_jwt: bool) -> ClientAuthentication:
    """The client authentication a metadata document declares; raise :class:`ClientMetadataError`.

    ``private_key_jwt`` is the operator's switch (``OAUTH_CIMD_PRIVATE_KEY_JWT``). While it is on, a
    document that declares ``private_key_jwt`` gets it, even if it also lists ``none`` among
    ``token_endpoint_auth_methods_supported`` (no downgrade to a public client); while it is off, such
    a document is a public client only if it lists ``none``."""
    method = metadata.get("token_endpoint_auth_method", "none")
    supported = metadata.get("token_endpoint_auth_methods_supported", [])
    if not isinstance(method, str):
        raise _invalid("token_endpoint_auth_method must be a string")
    if not isinstance(supported, list) or not all(isinstance(m, str) for m in supported):
        raise _invalid("token_endpoint_auth_methods_supported must be an array of strings")
    if method == "none":
        return PUBLIC
    if method != "private_key_jwt":
        raise _invalid(
            f"token_endpoint_auth_method {method[:40]!r} is not accepted for a client metadata document: "
            "use none or private_key_jwt (a document is public, so it cannot hold a secret)"
        )
    if not private_key_jwt:
        if "none" in supported:
            return PUBLIC
        raise _invalid("private_key_jwt is turned off on this server and the document does not offer none")
    has_jwks, has_uri = "jwks" in metadata, "jwks_uri" in metadata
    if has_jwks == has_uri:
        raise _invalid("a private_key_jwt client document has exactly one of jwks and jwks_uri")
    signing_alg = metadata.get("token_endpoint_auth_signing_alg", "")
    if signing_alg and signing_alg not in ASSERTION_ALGORITHMS:
        raise _invalid(f"token_endpoint_auth_signing_alg must be one of {', '.join(ASSERTION_ALGORITHMS)}")
    if has_uri:
        problem = _jwks_uri_problem(metadata["jwks_uri"])
        if problem:
            raise _invalid(problem)
        return ClientAuthentication(
            TokenEndpointAuthMethod.PRIVATE_KEY_JWT, jwks_uri=metadata["jwks_uri"], signing_alg=signing_alg
        )
    try:
        jwks = check_key_set(metadata["jwks"])
    except KeySetError as exc:
        raise _invalid(f"jwks: {exc}") from None
    return ClientAuthentication(TokenEndpointAuthMethod.PRIVATE_KEY_JWT, jwks=jwks, signing_alg=signing_alg)
