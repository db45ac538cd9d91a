"""The platform as relying party of a tenant's OpenID provider, with authlib.

One authlib client per identity provider and request (``client_for``), built from the provider's
stored discovery document: authlib makes the authorization URL (``state``, ``nonce``, PKCE S256),
exchanges the code and validates the ID token (signature with the provider's JWKS, ``iss``, ``aud``,
``exp``, ``iat``, ``nonce``, ``at_hash``). The platform adds what authlib leaves to it: the HTTP goes
through ``identity.outbound`` (SSRF-safe), the keys through ``identity.keys`` (cached, allow-listed
algorithms), and the transaction data (state, nonce, verifier, which provider, where to go next) is
kept in the browser's session under one name for every provider of the tenant, because the tenant has
one redirect URI: the state says which provider the answer belongs to, and reading it removes it.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.integrations.django_client import DjangoIntegration, DjangoOAuth2App
from authlib.integrations.httpx_client import OAuth2Client
from django.conf import settings
from django.http import HttpRequest

from identity import keys, outbound
from identity.errors import IdentityError
from identity.models import IdentityProvider

STATE_NAME = "sso"
STATE_MAX = 128  # authlib's states are 30 characters; anything long is not one of ours
SCOPE = "openid email profile"


class SessionState(DjangoIntegration):
    """authlib's per-session transaction store, with the platform's lifetime for a pending sign-in."""

    @property
    def expires_in(self) -> int:  # authlib reads it when it stores the state
        return int(settings.IDENTITY_SSO_STATE_SECONDS)


def state_store() -> SessionState:
    return SessionState(STATE_NAME)


def _auth_method(provider: IdentityProvider) -> str:
    if not provider.client_secret:
        return "none"
    supported = provider.metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"


class ProviderClient(DjangoOAuth2App):
    """authlib's Django client on its httpx2 OAuth 2.0 session, for one provider and one request."""

    client_cls = OAuth2Client

    def __init__(self, provider: IdentityProvider) -> None:
        metadata = dict(provider.metadata)
        metadata["id_token_signing_alg_values_supported"] = keys.allowed_algorithms(provider)
        super().__init__(
            state_store(),
            name=STATE_NAME,
            client_id=provider.client_id,
            client_secret=provider.client_secret or None,
            client_kwargs={
                "scope": SCOPE,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": _auth_method(provider),
            },
            **metadata,  # the stored discovery document: nothing is fetched to start a sign-in
        )
        self.provider = provider

    # every HTTP session authlib opens gets a fresh SSRF-safe transport
    def _get_session(self):
        self.client_kwargs.update(outbound.client_options())
        return super()._get_session()

    def _get_oauth_client(self, **metadata):
        self.client_kwargs.update(outbound.client_options())
        return super()._get_oauth_client(**metadata)

    def fetch_jwk_set(self, force: bool = False) -> dict:
        return keys.jwk_set(self.provider, force=force)


def client_for(provider: IdentityProvider) -> ProviderClient:
    return ProviderClient(provider)


def begin(request: HttpRequest, provider: IdentityProvider, *, redirect_uri: str, next_url: str) -> str:
    """Store a new transaction in the session and return the provider's authorization URL."""
    client = client_for(provider)
    started = client.create_authorization_url(redirect_uri)
    state_store().set_state_data(
        request.session,
        started["state"],
        {
            "redirect_uri": redirect_uri,
            "nonce": started["nonce"],
            "code_verifier": started["code_verifier"],
            "provider": provider.key,
            "next": next_url,
        },
    )
    return started["url"]


def pending(request: HttpRequest) -> dict[str, Any] | None:
    """The unexpired transaction the callback's ``state`` names in this browser's session, if any
    (authlib's store keeps the expiry but does not check it on reading)."""
    state = request.GET.get("state")
    if not state or len(state) > STATE_MAX:
        return None
    stored = request.session.get(f"_state_{STATE_NAME}_{state}")
    if not isinstance(stored, dict) or stored.get("exp", 0) < time.time():
        return None
    return state_store().get_state_data(request.session, state)


def forget(request: HttpRequest) -> None:
    state = request.GET.get("state")
    if state:
        state_store().clear_state_data(request.session, state)


def finish(request: HttpRequest, provider: IdentityProvider) -> dict[str, Any]:
    """Exchange the code (PKCE verifier from the session) and return the validated ID token's claims.
    authlib removes the transaction from the session first, so a replayed callback finds none."""
    token = client_for(provider).authorize_access_token(request)
    claims = token.get("userinfo")
    if not claims:
        raise IdentityError("id_token_missing", "the identity provider returned no ID token")
    return dict(claims)
