"""The public keys a CIMD client authenticates with (``private_key_jwt``): its JSON Web Key Set, from
the document (``jwks``) or from ``jwks_uri``. Pure functions over the JSON; PyJWT builds the keys.

- A set is an object with a ``keys`` array of at most ``MAX_KEYS`` keys. Keys the platform cannot use
  for a client assertion (another key type or curve, ``use`` other than ``sig``, an ``alg`` outside
  ``ASSERTION_ALGORITHMS``) are dropped; a set with none left is refused.
- A key carrying private members (``d``, ``p``, ``k``, ...) is refused, and so is its whole set: a
  client that publishes its private key has no key left to prove anything with.
- RSA keys have at least 2048 bits; EC keys are on P-256 (ES256).
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.exceptions import InvalidKeyError, PyJWKError

# RFC 7518 algorithms a client assertion may be signed with: asymmetric only, never "none" or HMAC
ASSERTION_ALGORITHMS = ("ES256", "PS256", "RS256")
KEY_TYPES = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
MAX_KEYS = 20
MIN_RSA_BITS = 2048
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class KeySetError(ValueError):
    """A key set the platform refuses; the message says why (never a key)."""


def _algorithms_for(key: dict[str, Any]) -> tuple[str, ...]:
    kty, alg = key.get("kty"), key.get("alg")
    if key.get("use") not in (None, "sig"):
        return ()
    ops = key.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return ()
    if kty == "EC" and key.get("crv") != "P-256":
        return ()
    usable = tuple(a for a in ASSERTION_ALGORITHMS if KEY_TYPES[a] == kty)
    if alg is not None:
        return (alg,) if alg in usable else ()
    return usable


def build_key(key: dict[str, Any], algorithm: str) -> jwt.PyJWK:
    """The PyJWT key for ``algorithm`` (which the key must allow); raises KeySetError."""
    if algorithm not in _algorithms_for(key):
        raise KeySetError(f"the key cannot verify {algorithm}")
    try:
        built = jwt.PyJWK(key, algorithm=algorithm)
    except (PyJWKError, InvalidKeyError, ValueError, TypeError) as exc:
        raise KeySetError(f"a key of the set is not a valid {KEY_TYPES[algorithm]} public key") from exc
    if isinstance(built.key, rsa.RSAPublicKey) and built.key.key_size < MIN_RSA_BITS:
        raise KeySetError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return built


def check_key_set(value: object) -> dict[str, list[dict[str, Any]]]:
    """The usable signing keys of a JWK Set, as ``{"keys": [...]}``; raises KeySetError."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise KeySetError('a JWK Set is an object with a "keys" array')
    keys = value["keys"]
    if len(keys) > MAX_KEYS:
        raise KeySetError(f"a JWK Set of at most {MAX_KEYS} keys")
    usable = []
    for key in keys:
        if not isinstance(key, dict):
            raise KeySetError("every key of a JWK Set is an object")
        if PRIVATE_MEMBERS & key.keys():
            raise KeySetError("the JWK Set holds private key material: publish public keys only")
        kid = key.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 255):
            raise KeySetError("a kid is a string of at most 255 characters")
        algorithms = _algorithms_for(key)
        if not algorithms:
            continue
        build_key(key, algorithms[0])  # well-formed and strong enough
        usable.append(key)
    if not usable:
        raise KeySetError(f"the JWK Set has no RSA or P-256 signing key for {', '.join(ASSERTION_ALGORITHMS)}")
    kids = [k.get("kid") for k in usable if k.get("kid") is not None]
    if len(kids) != len(set(kids)):
        raise KeySetError("two keys of the JWK Set share a kid")
    return {"keys": usable}


def select_key(key_set: dict[str, Any] | None, kid: str | None, algorithm: str) -> jwt.PyJWK | None:
    """The key of ``key_set`` that verifies ``algorithm`` with this ``kid``; without a kid, the only
    key that can. None when there is no such key (or, without a kid, more than one)."""
    candidates = [k for k in (key_set or {}).get("keys", []) if algorithm in _algorithms_for(k)]
    if kid is not None:
        candidates = [k for k in candidates if k.get("kid") == kid]
    if len(candidates) != 1:
        return None
    return build_key(candidates[0], algorithm)
