"""The throwaway identity provider of the enterprise-managed authorization check: served by the
lifecycle command itself (a thread of this process) on an address the deployment can reach
(``--idp-host``, loopback by default), and discarded after the check.

It publishes what the platform reads of an identity provider, an OpenID discovery document and its
JWKS (one RSA key made at start), and plays the enterprise's side of the flow: it signs ID-JAGs for
a member, as an IdP's RFC 8693 token exchange would answer them. Its issuer is plain http: a
deployment that refuses such issuers (production: ``identity.outbound``) makes the check a ``[skip]``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ID_JAG_SECONDS = 300


class ThrowawayIdP:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"lifecycle-{uuid.uuid4().hex[:8]}"
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self._jwks = {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self.issuer = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ThrowawayIdP:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _documents(self) -> dict[str, dict]:
        return {
            "/.well-known/openid-configuration": {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",  # never used: no sign-in here
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"],
            },
            "/jwks.json": self._jwks,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document = idp._documents().get(self.path)
                body = json.dumps(document or {"error": "not_found"}).encode()
                self.send_response(200 if document else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def id_jag(self, *, sub: str, email: str, audience: str, client_id: str, resource: str, scope: str) -> str:
        """An ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant) as this IdP issues it."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "client_id": client_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ID_JAG_SECONDS,
            "resource": resource,
            "scope": scope,
            "email": email,
            "email_verified": True,
        }
        return jwt.encode(claims, self._key, "RS256", headers={"typ": "oauth-id-jag+jwt", "kid": self.kid})
