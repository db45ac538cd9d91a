"""ID tokens from a provider's token endpoint, checked as OpenID Connect Core 3.1.3.7 says, with PyJWT.

- Signature: with the provider's keys when its ``jwks_uri`` is known (discovery or preset), fetched
  through the platform's SSRF-safe outbound HTTP (``SafeJWKClient``: PyJWT's ``PyJWKClient`` with its
  fetch replaced) and cached per URI; asymmetric algorithms only, never ``none``. Without a
  ``jwks_uri`` the token is read without a signature check: it came straight from the token endpoint
  over TLS, which 3.1.3.7 (6) accepts instead of the signature for the code flow.
- ``iss`` is the provider's issuer exactly (Entra's multi-tenant issuer names the user's directory:
  ``{tenantid}`` is the token's ``tid``; a preset may list aliases, e.g. Google's bare host name).
- ``aud`` contains the client id; with several audiences, ``azp`` must be the client id (and must be
  whenever present).
- ``exp`` is in the future, ``iat`` present (``LEEWAY_SECONDS`` of clock skew either way).
- ``nonce`` is the one this connect attempt sent.
Every refusal is a ``ConnectorError`` with a stable code; nothing of the token is in its message.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections import OrderedDict
from typing import Any

import jwt

from connectors import answers, http, presets
from connectors.errors import ConnectorError, ProviderUnavailable
from connectors.models import Provider

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 60
MAX_CLIENTS = 64
REQUIRED = ["iss", "sub", "aud", "exp", "iat"]


class SafeJWKClient(jwt.PyJWKClient):
    """PyJWT's JWKS client, fetching through ``connectors.http`` (public addresses only, no redirects,
    bounded time and size) instead of ``urllib``."""

    def fetch_data(self) -> Any:
        try:
            response = http.request("GET", self.uri)
        except http.OutboundError as exc:
            if exc.transient:
                raise ProviderUnavailable("jwks_unavailable", "the provider's keys could not be fetched") from exc
            raise ConnectorError("invalid_id_token", f"the provider's keys cannot be fetched ({exc.code})") from exc
        body = response.json() if response.status == 200 else None
        if not isinstance(body, dict):
            raise ProviderUnavailable("jwks_unavailable", f"the provider's keys answered HTTP {response.status}")
        return body


_clients: OrderedDict[str, SafeJWKClient] = OrderedDict()
_clients_lock = threading.Lock()


def _client(uri: str) -> SafeJWKClient:
    """One client per JWKS URI (its key set cached for five minutes, refetched for an unknown ``kid``)."""
    with _clients_lock:
        client = _clients.pop(uri, None) or SafeJWKClient(uri, cache_jwk_set=True, lifespan=300)
        _clients[uri] = client
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)
        return client


def issuer_matches(provider: Provider, iss: Any, claims: dict[str, Any] | None = None) -> bool:
    """``iss`` of an ID token (``claims``) or of an authorization response (no claims) is the provider's
    issuer. Entra's multi-tenant issuer names the user's directory: in an ID token it must be the
    token's own ``tid``; on an authorization response, any one directory."""
    if not isinstance(iss, str) or not provider.issuer:
        return False
    expected = provider.issuer.rstrip("/")
    if "{tenantid}" in expected:
        if claims is None:
            pattern = re.escape(expected).replace(re.escape("{tenantid}"), "[^/]+")
            return re.fullmatch(pattern, iss.rstrip("/")) is not None
        tid = claims.get("tid")
        if not isinstance(tid, str) or not tid or "/" in tid:
            return False
        expected = expected.replace("{tenantid}", tid)
    return iss.rstrip("/") == expected or iss in presets.id_token_issuer_aliases(provider.preset)


def _decode(provider: Provider, id_token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise ConnectorError("invalid_id_token", "the ID token could not be read") from exc
    options = {"require": REQUIRED, "verify_iss": False, "verify_exp": True, "verify_iat": True, "verify_aud": True}
    common = {"audience": provider.client_id, "leeway": LEEWAY_SECONDS, "options": options}
    try:
        if provider.jwks_uri:
            if header.get("alg") not in ALGORITHMS:
                raise ConnectorError("invalid_id_token", "the ID token is not signed with an accepted algorithm")
            key = _client(provider.jwks_uri).get_signing_key_from_jwt(id_token)
            return jwt.decode(id_token, key.key, algorithms=[header["alg"]], **common)
        if header.get("alg") in (None, "none"):
            raise ConnectorError("invalid_id_token", "the ID token is not signed")
        options["verify_signature"] = False
        return jwt.decode(id_token, algorithms=[*ALGORITHMS, "HS256", "HS384", "HS512"], **common)
    except jwt.ExpiredSignatureError as exc:
        raise ConnectorError("id_token_expired", "the ID token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise ConnectorError("id_token_audience_mismatch", "the ID token was issued to another client") from exc
    except jwt.PyJWKClientConnectionError as exc:
        raise ProviderUnavailable("jwks_unavailable", "the provider's keys could not be fetched") from exc
    except jwt.PyJWTError as exc:  # signature, unknown key, missing claims, malformed
        raise ConnectorError("invalid_id_token", f"the ID token was refused ({type(exc).__name__})") from exc
    except RecursionError as exc:  # a payload nested thousands deep
        raise ConnectorError("invalid_id_token", "the ID token could not be read") from exc


def verify(provider: Provider, id_token: str, *, nonce: str) -> dict[str, Any]:
    """The ID token's claims once every check above passed."""
    claims = _decode(provider, id_token)
    if not issuer_matches(provider, claims.get("iss"), claims):
        raise ConnectorError("id_token_issuer_mismatch", "the ID token comes from another issuer")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != provider.client_id:
        raise ConnectorError("id_token_audience_mismatch", "the ID token was issued to another client (azp)")
    if nonce and not (isinstance(claims.get("nonce"), str) and hmac.compare_digest(claims["nonce"], nonce)):
        raise ConnectorError("nonce_mismatch", "the ID token's nonce does not match this attempt")
    return answers.claims(claims, required=("sub",))  # plain, storable values only
