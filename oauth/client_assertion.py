"""``private_key_jwt`` (RFC 7523 §2.2, OpenID Connect Core §9) for CIMD clients whose document
declares it: at the token endpoint (code exchange, refresh) and the revocation endpoint the client
sends ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a
``client_assertion`` JWT signed with a key of its JWK Set (``oauth.jwks``; the document's ``jwks``, or
``jwks_uri`` fetched through the CIMD fetcher). PyJWT verifies it; this module decides what is
accepted:

- at most ``MAX_ASSERTION_BYTES``; ``alg`` from ``ASSERTION_ALGORITHMS`` only (RS256, PS256, ES256:
  never ``none`` or HMAC, whatever the header says), and the document's
  ``token_endpoint_auth_signing_alg`` when it names one;
- the key: by ``kid`` (without one, the only key that can verify ``alg``). A ``jwks_uri`` set is kept
  for its answer's lifetime; an unknown ``kid`` fetches it again, at most once per
  ``OAUTH_JWKS_REFETCH_SECONDS`` per client (key rotation without a fetch per forged ``kid``);
- ``iss`` = ``sub`` = the client_id (the ``client_id`` parameter may be absent; when present it must
  match);
- ``aud``: the tenant's issuer as its sole value (draft-ietf-oauth-rfc7523bis); the token endpoint URL
  is accepted too, for clients that follow RFC 7523's older advice. An ``aud`` with more than one value
  is refused, whatever it contains;
- ``exp`` required, at most ``OAUTH_CLIENT_ASSERTION_MAX_SECONDS`` ahead; ``nbf`` and ``iat`` not in
  the future (``LEEWAY_SECONDS`` of clock skew);
- ``jti`` required and single-use: recorded in the tenant schema until the assertion expires
  (``ClientAssertionJti``). The database, not the cache the rate limits use: that one fails open.

Every refusal is an ``AssertionRefused`` with a short ``reason`` (the audit trail's outcome) and a
description for the client's ``invalid_client`` answer. Neither carries the assertion or a key.
"""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from oauth2_provider.cimd import CIMDError

from oauth.cimd import fetch_key_set
from oauth.jwks import ASSERTION_ALGORITHMS, KeySetError, select_key
from oauth.models import ClientProfile
from oauth.services import record_assertion_jti, store_fetched_key_set

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_BYTES = 8192
LEEWAY_SECONDS = 30
MAX_CLIENT_ID = 255


class AssertionRefused(Exception):
    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


def unverified_issuer(assertion: object) -> str | None:
    """The ``iss`` claim of a compact JWT, unverified: which client the assertion claims to be (to look
    it up, and as the token endpoint's rate-limit key). None when there is none to read."""
    if not isinstance(assertion, str) or len(assertion) > MAX_ASSERTION_BYTES or assertion.count(".") != 2:
        return None
    payload = assertion.split(".")[1]
    try:
        claims = json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) and 0 < len(issuer) <= MAX_CLIENT_ID else None


def _key(profile: ClientProfile, kid: str | None, algorithm: str) -> jwt.PyJWK:
    now = timezone.now()
    fetched = False
    refetch_after = timedelta(seconds=settings.OAUTH_JWKS_REFETCH_SECONDS)
    last, until = profile.jwks_fetched_at, profile.jwks_expires_at
    may_fetch = bool(profile.jwks_uri) and (last is None or last + refetch_after <= now)
    stale = profile.jwks is None or (bool(profile.jwks_uri) and (until is None or until <= now))
    if stale and may_fetch:
        _fetch(profile, now)
        fetched = True
    try:
        key = select_key(profile.jwks, kid, algorithm)
        if key is None and may_fetch and not fetched:  # a key the client rotated in since the last fetch
            _fetch(profile, now)
            key = select_key(profile.jwks, kid, algorithm)
    except KeySetError as exc:
        raise AssertionRefused("unknown_key", f"the client's key for this assertion is unusable: {exc}") from None
    if key is not None:
        return key
    if profile.jwks is None:
        raise AssertionRefused("no_keys", "the client's jwks_uri could not be fetched")
    again = f" (its jwks_uri is fetched again at most every {settings.OAUTH_JWKS_REFETCH_SECONDS} s)"
    raise AssertionRefused(
        "unknown_key",
        f"no key of the client's JWK Set verifies {algorithm} with this kid" + (again if profile.jwks_uri else ""),
    )


def _fetch(profile: ClientProfile, now) -> None:
    try:
        jwks, max_age = fetch_key_set(profile.jwks_uri)
    except CIMDError:
        jwks, max_age = None, 0  # the last good set (if any) stays
    store_fetched_key_set(profile=profile, jwks=jwks, max_age=max_age, now=now)


def _audience_ok(aud: Any, audiences: tuple[str, ...]) -> bool:
    if isinstance(aud, list):
        if len(aud) != 1:
            return False  # multi-valued: refused, whatever it contains
        aud = aud[0]
    return isinstance(aud, str) and aud in audiences


def verify(assertion: str, *, client_id: str, profile: ClientProfile, audiences: tuple[str, ...]) -> dict[str, Any]:
    """The assertion's claims, once it is accepted as ``client_id``'s and its ``jti`` recorded; raises
    AssertionRefused. ``audiences``: the tenant's issuer first, then the token endpoint URL."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise AssertionRefused("too_large", f"client_assertion is larger than {MAX_ASSERTION_BYTES} bytes")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        raise AssertionRefused("malformed", "client_assertion is not a compact JWS") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ASSERTION_ALGORITHMS:
        raise AssertionRefused(
            "alg_not_allowed", f"client_assertion must be signed with one of {', '.join(ASSERTION_ALGORITHMS)}"
        )
    if profile.signing_alg and algorithm != profile.signing_alg:
        raise AssertionRefused(
            "alg_not_allowed", f"this client's document declares token_endpoint_auth_signing_alg {profile.signing_alg}"
        )
    if kid is not None and not isinstance(kid, str):
        raise AssertionRefused("malformed", "the kid header of client_assertion must be a string")
    key = _key(profile, kid, algorithm)
    try:
        claims = jwt.decode(
            assertion,
            key=key.key,
            algorithms=[algorithm],
            options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_aud": False, "verify_iss": False},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.InvalidSignatureError:
        raise AssertionRefused("bad_signature", "client_assertion is not signed by a key of the client") from None
    except jwt.ExpiredSignatureError:
        raise AssertionRefused("expired", "client_assertion has expired") from None
    except jwt.ImmatureSignatureError:
        raise AssertionRefused("not_yet_valid", "client_assertion is not valid yet (nbf or iat ahead)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AssertionRefused("missing_claim", f"client_assertion has no {exc.claim} claim") from None
    except jwt.InvalidTokenError:
        raise AssertionRefused("malformed", "client_assertion is not a valid JWT") from None
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise AssertionRefused("wrong_issuer", "client_assertion's iss and sub must both be the client_id")
    if not _audience_ok(claims["aud"], audiences):
        raise AssertionRefused("wrong_audience", f"client_assertion's aud must be this server's issuer, {audiences[0]}")
    now = timezone.now()
    expires = claims["exp"]
    latest = now.timestamp() + settings.OAUTH_CLIENT_ASSERTION_MAX_SECONDS + LEEWAY_SECONDS
    if not isinstance(expires, int | float) or expires > latest:
        raise AssertionRefused(
            "too_long_lived",
            f"client_assertion's exp is at most {settings.OAUTH_CLIENT_ASSERTION_MAX_SECONDS} s in the future",
        )
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_CLIENT_ID:
        raise AssertionRefused("malformed", "client_assertion's jti must be a string of 1 to 255 characters")
    keep_until = datetime.fromtimestamp(expires + LEEWAY_SECONDS, tz=UTC)
    try:
        fresh = record_assertion_jti(application=profile.application, jti=jti, expires_at=keep_until)
    except DatabaseError:
        raise AssertionRefused("replay_unchecked", "client_assertion's jti could not be checked; retry") from None
    if not fresh:
        raise AssertionRefused("replayed", "client_assertion was already used (its jti is single-use)")
    return claims
