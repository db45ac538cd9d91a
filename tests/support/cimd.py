"""Client keys for CIMD and private_key_jwt: a key pair signing client assertions, and hand-made JWSs
(unsigned or HMAC) that must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """A client's key pair: its public JWK Set, and assertions signed with its private key."""

    def __init__(self, kid: str, algorithm: str = "RS256") -> None:
        self.kid, self.algorithm = kid, algorithm
        if algorithm == "ES256":
            self.private_key = ec.generate_private_key(ec.SECP256R1())
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        else:
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": kid, "use": "sig"}
        self.public_pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self, *others: Signer) -> dict:
        return {"keys": [self.jwk, *(o.jwk for o in others)]}

    def claims(self, client_id: str, aud, **overrides) -> dict:
        now = int(time.time())
        return {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
            **overrides,
        }

    def assertion(self, client_id: str, aud, *, kid: str | None = None, **overrides) -> str:
        headers = {"kid": kid or self.kid}
        return jwt.encode(self.claims(client_id, aud, **overrides), self.private_key, self.algorithm, headers)


def forged(header: dict, claims: dict, key: bytes | None) -> str:
    """A JWS assembled by hand: unsigned (``key`` None) or HMAC-SHA256 with ``key``."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"
