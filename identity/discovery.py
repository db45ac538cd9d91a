"""OpenID Connect Discovery 1.0: an issuer URL to its provider metadata, checked before it is kept."""

from __future__ import annotations

from typing import Any

from identity import outbound
from identity.errors import IdentityError

# what the relying party and the key fetcher use; the rest of the document is not kept
KEPT = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
    "token_endpoint_auth_methods_supported",
    "id_token_signing_alg_values_supported",
    "code_challenge_methods_supported",
    "authorization_response_iss_parameter_supported",
    "backchannel_logout_supported",
    "backchannel_logout_session_supported",
    "scopes_supported",
)
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint", "end_session_endpoint")


def discover(issuer: str) -> dict[str, Any]:
    """The issuer's metadata (``KEPT`` members). Its ``issuer`` must be exactly ``issuer`` (OpenID
    Connect Discovery §4.3) and every endpoint must pass the outbound URL rule."""
    outbound.check_url(issuer)
    document = outbound.get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document is None:
        raise IdentityError("discovery_failed", f"no OpenID provider metadata found for {issuer}")
    if document.get("issuer") != issuer:
        raise IdentityError("issuer_mismatch", f"the metadata of {issuer} names another issuer")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(name), str) or not document[name]:
            raise IdentityError("missing_endpoint", f"the metadata of {issuer} has no {name}")
    for name in ENDPOINTS:
        if document.get(name):
            outbound.check_url(document[name])
    return {name: document[name] for name in KEPT if name in document}
