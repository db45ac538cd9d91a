"""OpenID Connect Back-Channel Logout 1.0: a logout token from one of the tenant's providers ends
the user's sign-in sessions in this tenant. It revokes no MCP grant (deprovisioning does that).

The token is validated as §2.6 says: a JWT signed by the provider's key (allow-listed algorithms),
``iss`` a provider of this tenant, ``aud`` its client id, ``iat`` present (and ``exp`` when given) in
the accepted window, ``jti`` present and accepted once, ``events`` holding the back-channel logout
member with a JSON object value, ``sub`` or ``sid``, no ``nonce``, and an explicit ``typ`` other than
``logout+jwt`` refused (so an ID token is never taken for a logout token).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from identity import keys
from identity.errors import IdentityError
from identity.models import IdentityLink, IdentityProvider, LogoutTokenUse, SignInSession
from identity.selectors import providers_of_issuer
from identity.services import end_sessions

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LEEWAY = timedelta(seconds=120)
MAX_AGE = timedelta(minutes=10)  # an older iat is refused: the jti record is kept this long


def _unverified_issuer(token: str) -> str:
    try:
        payload = json.loads(extract_compact(token.encode()).payload)
    except (JoseError, ValueError, UnicodeDecodeError) as exc:
        raise IdentityError("invalid_token", "the logout token is not a JWS") from exc
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(issuer, str):
        raise IdentityError("invalid_token", "the logout token has no iss")
    return issuer


def _at(value: object, name: str) -> datetime:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise IdentityError("invalid_token", f"the logout token's {name} is missing or not a number")
    return datetime.fromtimestamp(value, tz=UTC)


def verified_claims(token: str) -> tuple[list[IdentityProvider], dict]:
    """The provider records ``token`` is for (its issuer, a client id in its audience) and its claims,
    after every check of §2.6 but ``jti``."""
    if not isinstance(token, str) or not token or len(token) > 16_384:
        raise IdentityError("invalid_request", "logout_token is required")
    candidates = providers_of_issuer(_unverified_issuer(token))
    if not candidates:
        raise IdentityError("unknown_issuer", "the logout token's issuer is not a provider of this tenant")
    decoded = keys.decode(candidates[0], token)  # one issuer, one set of keys
    claims, header = decoded.claims, decoded.header
    if header.get("typ") not in (None, "logout+jwt", "JWT"):
        raise IdentityError("invalid_token", "the token is not a logout token (typ)")
    audience = claims.get("aud")
    audience = audience if isinstance(audience, list) else [audience]
    # one issuer may be registered more than once (several client ids at one IdP): the audience says which
    providers = [p for p in candidates if p.client_id in audience]
    if not providers:
        raise IdentityError("invalid_token", "aud is not a client of this tenant at that provider")
    if claims.get("iss") != providers[0].issuer:
        raise IdentityError("invalid_token", "iss")
    now = timezone.now()
    issued = _at(claims.get("iat"), "iat")
    if issued > now + LEEWAY or issued < now - MAX_AGE:
        raise IdentityError("invalid_token", "iat is outside the accepted window")
    if "exp" in claims and _at(claims["exp"], "exp") + LEEWAY < now:
        raise IdentityError("invalid_token", "the logout token has expired")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(EVENT), dict):
        raise IdentityError("invalid_token", "events has no back-channel logout member")
    if "nonce" in claims:
        raise IdentityError("invalid_token", "a logout token must not carry a nonce")
    if not isinstance(claims.get("sub"), str) and not isinstance(claims.get("sid"), str):
        raise IdentityError("invalid_token", "sub or sid is required")
    if not isinstance(claims.get("jti"), str) or not claims["jti"] or len(claims["jti"]) > 255:
        raise IdentityError("invalid_token", "jti is required")
    return providers, claims


def backchannel_logout(*, token: str) -> int:
    """Validate the logout token, accept its ``jti`` once and end the sessions it names: with ``sid``
    the sessions of that provider session, else every session of the ``sub``'s user in this tenant.
    Returns how many sessions ended (0 is a success too: nothing was signed in)."""
    providers, claims = verified_claims(token)
    now = timezone.now()
    try:
        with transaction.atomic():
            LogoutTokenUse.objects.filter(expires_at__lt=now).delete()
            LogoutTokenUse.objects.create(provider=providers[0], jti=claims["jti"], expires_at=now + MAX_AGE + LEEWAY)
    except IntegrityError:
        raise IdentityError("replayed", "this logout token was already used") from None
    links = IdentityLink.objects.filter(provider__in=providers, subject=claims.get("sub") or "")
    user_ids = list(links.values_list("user_id", flat=True))
    if isinstance(claims.get("sid"), str):
        sessions = SignInSession.objects.filter(provider__in=providers, sid=claims["sid"])
        if user_ids:
            sessions = sessions.filter(user_id__in=user_ids)
    else:
        sessions = SignInSession.objects.filter(user_id__in=user_ids)
    return end_sessions(sessions=list(sessions))
