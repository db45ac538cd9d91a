"""An identity provider's signing keys (its ``jwks_uri``) and the JWTs they sign.

One JOSE library on this path: authlib validates ID tokens with ``joserfc``, so back-channel logout
tokens (and the ID-JAGs of enterprise-managed authorization) are verified with the same ``KeySet``
and the same algorithm allow-list. Keys are cached per provider (the cache keys carry the tenant's
schema) and fetched again once when a token names an unknown ``kid`` (key rotation), at most once per
``IDENTITY_JWKS_REFETCH_SECONDS`` per provider: tokens with made-up ``kid`` values, which anyone can
send to the token endpoint or the back-channel logout endpoint, do not turn into a fetch each.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from identity import outbound
from identity.errors import IdentityError
from identity.models import IdentityProvider

# asymmetric algorithms only: never "none", never an HMAC keyed with a public value
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CACHE_SECONDS = 300


def allowed_algorithms(provider: IdentityProvider) -> list[str]:
    """The allow-list, narrowed to what the provider says it signs ID tokens with (when it says)."""
    advertised = provider.metadata.get("id_token_signing_alg_values_supported")
    if isinstance(advertised, list) and advertised:
        return [alg for alg in ALGORITHMS if alg in advertised] or ["RS256"]
    return list(ALGORITHMS)


def _cache_key(provider: IdentityProvider) -> str:
    return f"identity:jwks:{provider.pk}:{provider.updated_at.timestamp() if provider.updated_at else 0}"


def _may_refetch(provider: IdentityProvider) -> bool:
    """Claim this provider's forced fetch for the refetch interval (False: one happened recently)."""
    return cache.add(f"identity:jwks-refetch:{provider.pk}", 1, int(settings.IDENTITY_JWKS_REFETCH_SECONDS))


def jwk_set(provider: IdentityProvider, *, force: bool = False) -> dict:
    """The provider's JWKS document (cached; ``force`` fetches it again unless that was done within
    the refetch interval)."""
    key = _cache_key(provider)
    document = cache.get(key)
    if force and (document is None or _may_refetch(provider)):
        document = None
    if document is None:
        document = outbound.get_json(provider.metadata.get("jwks_uri", ""))
        if document is None or not isinstance(document.get("keys"), list):
            raise IdentityError("jwks_unavailable", f"the signing keys of {provider.key!r} could not be fetched")
        cache.set(key, document, CACHE_SECONDS)
    return document


def decode(provider: IdentityProvider, token: str) -> jwt.Token:
    """Verify ``token``'s signature with the provider's keys (allowed algorithms only); the claims are
    the caller's to check. Raises ``IdentityError("invalid_signature")``."""
    for force in (False, True):
        keys = KeySet.import_key_set(jwk_set(provider, force=force))
        try:
            return jwt.decode(token, keys, algorithms=allowed_algorithms(provider))
        except JoseError as exc:
            if exc.error == "invalid_key_id" and force:
                raise IdentityError(
                    "unknown_key",
                    f"no key of {provider.key!r} has this kid (its keys are fetched again at most every "
                    f"{settings.IDENTITY_JWKS_REFETCH_SECONDS} s)",
                ) from exc
            if force or exc.error != "invalid_key_id":
                raise IdentityError("invalid_signature", f"the token is not signed by {provider.key!r}") from exc
        except ValueError as exc:
            raise IdentityError("invalid_token", "the token is not a JWT") from exc
    raise IdentityError("invalid_signature", f"the token is not signed by {provider.key!r}")
