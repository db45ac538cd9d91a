"""Writes of the connectors app: providers, connect flows, disconnect, the revocation sweep.

Every function is keyword-only; each database write is one transaction. Network calls to a provider
never run inside a transaction that holds a lock others wait on, except where stated.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from connectors import discovery, http, timing, upstream
from connectors.errors import ConnectorError
from connectors.models import AuthorizationRequest, ConnectedAccount, Credential, Provider
from connectors.presets import documented_lifetime, preset, preset_names
from tenants.services import Outcome

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
ENDPOINT_FIELDS = ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- providers ---------------------------------------------------------------------------------------


def add_provider(
    *,
    key: str,
    client_id: str,
    client_secret: str = "",
    display_name: str | None = None,
    preset_name: str | None = None,
    preset_params: dict[str, str] | None = None,
    issuer: str | None = None,
    endpoints: dict[str, str] | None = None,
    scopes: list[str] | None = None,
    auth_method: str | None = None,
    mcp_endpoint: str | None = None,
    api_base_url: str | None = None,
    extra_authorize_params: dict[str, str] | None = None,
) -> tuple[Provider, Outcome]:
    """Create or update the provider ``key`` from a preset, an issuer (discovery) or explicit endpoints.

    Idempotent: the same facts again change nothing; other facts update the provider in place."""
    if slugify(key) != key or not key:
        raise ConnectorError("invalid_key", "the key must be a slug (letters, digits, - and _)")
    sources = [s for s in (preset_name, issuer, (endpoints or {}).get("authorization_endpoint")) if s]
    if len(sources) != 1:
        raise ConnectorError("invalid_source", "give exactly one of a preset, an issuer or explicit endpoints")
    if not client_id:
        raise ConnectorError("client_id_required", "a client id is required")
    fields: dict[str, Any]
    if preset_name:
        found = preset(preset_name, preset_params)
        if found is None:
            raise ConnectorError("unknown_preset", f"no preset {preset_name!r}; known: {', '.join(preset_names())}")
        fields = {**found, "preset": preset_name}
    elif issuer:
        fields = discovery.provider_fields(discovery.discover(issuer))
        fields["display_name"] = issuer
    else:
        endpoints = endpoints or {}
        fields = {name: endpoints.get(name, "") for name in ENDPOINT_FIELDS}
        fields["display_name"] = key
    if not fields.get("authorization_endpoint") or not fields.get("token_endpoint"):
        raise ConnectorError("missing_endpoint", "authorization and token endpoints are required")
    if display_name:
        fields["display_name"] = display_name
    if scopes is not None:
        fields["default_scopes"] = scopes
    if auth_method:
        fields["token_endpoint_auth_method"] = auth_method
    if mcp_endpoint is not None:
        fields["mcp_endpoint"] = mcp_endpoint
    if api_base_url is not None:
        fields["api_base_url"] = api_base_url.rstrip("/")
    if extra_authorize_params is not None:
        fields["extra_authorize_params"] = {**fields.get("extra_authorize_params", {}), **extra_authorize_params}
    method = fields.get("token_endpoint_auth_method", Provider.AuthMethod.BASIC)
    if method not in Provider.AuthMethod.values:
        allowed = ", ".join(Provider.AuthMethod.values)
        raise ConnectorError("invalid_auth_method", f"auth method must be one of {allowed}")
    if method != Provider.AuthMethod.NONE and not client_secret:
        raise ConnectorError("client_secret_required", f"{method} needs a client secret")
    for name in (*ENDPOINT_FIELDS, "issuer", "mcp_endpoint", "api_base_url"):
        if fields.get(name):
            try:
                http.check_url(fields[name])
            except http.OutboundError as exc:
                raise ConnectorError(exc.code, f"{name}: {exc}") from exc
    fields = {k: v for k, v in fields.items() if k in {f.name for f in Provider._meta.fields}}
    fields.update(client_id=client_id, client_secret=client_secret if method != Provider.AuthMethod.NONE else "")
    with transaction.atomic():
        provider = Provider.objects.select_for_update().filter(key=key).first()
        if provider is None:
            provider = Provider.objects.create(key=key, **fields)
            return provider, Outcome(True, f"provider {key!r} added")
        changed = [name for name, value in fields.items() if getattr(provider, name) != value]
        if not changed:
            return provider, Outcome(False, f"provider {key!r} already exists")
        for name in changed:
            setattr(provider, name, fields[name])
        provider.save()
        return provider, Outcome(True, f"provider {key!r} updated ({', '.join(sorted(changed))})")


# --- connect ----------------------------------------------------------------------------------------


def start_connect(*, user_id: int, provider: Provider, redirect_uri: str) -> str:
    """Record a connect attempt and return the provider's authorization URL to redirect to.

    The ``state`` is bound to the user, the provider and (by the schema it is stored in) the tenant,
    not to the login session: if the session expires during the round trip at the provider, the user
    logs in again and the callback still completes. Only the same user can complete it (an attacker's
    state in a victim's browser is refused: login CSRF), once, within ten minutes."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64) if provider.pkce else ""
    scopes = list(provider.default_scopes)
    nonce = secrets.token_urlsafe(16) if "openid" in scopes else ""
    AuthorizationRequest.objects.create(
        state_hash=digest(state),
        user_id=user_id,
        provider=provider,
        code_verifier=verifier,
        nonce=nonce,
        redirect_uri=redirect_uri,
        scopes=scopes,
        expires_at=timezone.now() + STATE_TTL,
    )
    params = {
        **provider.extra_authorize_params,
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": provider.scope_separator.join(scopes),
        "state": state,
    }
    if verifier:
        challenge = hashlib.sha256(verifier.encode()).digest()
        params["code_challenge"] = base64.urlsafe_b64encode(challenge).rstrip(b"=").decode()
        params["code_challenge_method"] = "S256"
    if nonce:
        params["nonce"] = nonce
    joiner = "&" if "?" in provider.authorization_endpoint else "?"
    return provider.authorization_endpoint + joiner + urlencode(params)


@dataclass(frozen=True)
class CallbackParams:
    state: str
    code: str
    error: str
    error_description: str
    iss: str


def _consume_state(*, state: str, user_id: int) -> AuthorizationRequest:
    if not state:
        raise ConnectorError("missing_state", "the provider's answer carries no state")
    with transaction.atomic():
        request = (
            AuthorizationRequest.objects.select_for_update()
            .select_related("provider")
            .filter(state_hash=digest(state))
            .first()
        )
        if request is None:
            raise ConnectorError("unknown_state", "this connection attempt is unknown")
        if request.user_id != user_id:  # checked before consuming: another user cannot burn it
            raise ConnectorError("state_mismatch", "this connection attempt was started by another user")
        if request.consumed_at is not None:
            raise ConnectorError("state_replayed", "this connection attempt was already used")
        request.consumed_at = timezone.now()
        request.save(update_fields=["consumed_at"])
    if request.expires_at <= request.consumed_at:
        raise ConnectorError("state_expired", "this connection attempt expired; start again")
    return request


def complete_connect(*, params: CallbackParams, user_id: int) -> ConnectedAccount:
    """The callback: accept the state once, exchange the code, record the identity and the scopes
    actually granted. Every failure raises a ``ConnectorError`` and stores no account data."""
    request = _consume_state(state=params.state, user_id=user_id)
    provider = request.provider
    if params.iss and provider.issuer and params.iss.rstrip("/") != provider.issuer.rstrip("/"):
        raise ConnectorError("issuer_mismatch", "the answer comes from another issuer (RFC 9207)")
    if params.error:
        code = "access_denied" if params.error == "access_denied" else "provider_error"
        raise ConnectorError(code, f"the provider answered {params.error}")
    if not params.code:
        raise ConnectorError("missing_code", "the provider's answer carries no code")
    tokens = upstream.exchange_code(
        provider, code=params.code, redirect_uri=request.redirect_uri, code_verifier=request.code_verifier
    )
    identity: dict[str, Any] = {}
    if tokens.id_token:
        identity = upstream.id_token_claims(tokens.id_token)
        if request.nonce and identity.get("nonce") != request.nonce:
            raise ConnectorError("nonce_mismatch", "the ID token's nonce does not match this attempt")
    if provider.userinfo_endpoint:
        info = upstream.userinfo(provider, tokens.access_token)
        if identity.get("sub") and info.get("sub") and info["sub"] != identity["sub"]:
            raise ConnectorError("identity_mismatch", "userinfo and ID token name different subjects")
        identity = {**identity, **info}
    granted = tokens.scopes if tokens.scopes is not None else list(request.scopes)
    previous = ConnectedAccount.objects.select_related("provider").filter(user_id=user_id, provider=provider).first()
    if previous is not None and previous.revocation_pending:
        _revoke_and_forget(previous)  # best effort before its credential is replaced; the sweep may not get another try
    with transaction.atomic():
        account, _ = ConnectedAccount.objects.select_for_update().get_or_create(user_id=user_id, provider=provider)
        account.status = ConnectedAccount.Status.ACTIVE
        account.status_reason = ""
        account.refreshing_since = None
        account.revocation_pending = False
        account.external_account_id = str(identity.get(provider.account_id_claim) or identity.get("sub") or "")[:255]
        label = identity.get("email") or identity.get("login") or identity.get("name") or ""
        account.external_account_label = str(label)[:255]
        account.requested_scopes = list(request.scopes)
        account.granted_scopes = granted
        times = timing.token_times(tokens.expires_in, documented_lifetime(provider.preset))
        account.expires_at, account.token_issued_at = times.expires_at, times.issued_at
        account.token_lifetime_seconds = times.lifetime
        account.save()
        Credential.objects.update_or_create(
            account=account,
            defaults={
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "token_type": tokens.token_type,
            },
        )
    log.info("connectors: account %s connected to %s", account.pk, provider.key)
    return account


# --- disconnect and the revocation sweep ------------------------------------------------------------


def _revoke_and_forget(account: ConnectedAccount) -> bool:
    """Revoke the stored tokens at the provider, then delete them. False when revocation failed."""
    credential = Credential.objects.filter(account=account).first()
    if credential is not None:
        try:
            if credential.refresh_token:
                upstream.revoke(account.provider, credential.refresh_token, "refresh_token")
            upstream.revoke(account.provider, credential.access_token, "access_token")
        except ConnectorError as exc:
            log.warning("connectors: revocation of account %s failed (%s); the sweep retries", account.pk, exc.code)
            return False
    with transaction.atomic():
        Credential.objects.filter(account=account).delete()
        ConnectedAccount.objects.filter(pk=account.pk).update(revocation_pending=False, updated_at=timezone.now())
    return True


def disconnect(*, user_id: int, provider_key: str) -> tuple[ConnectedAccount, Outcome]:
    """Mark the account revoked (committed first, so a crash leaves it for the sweep), revoke at the
    provider (RFC 7009) and delete the credentials; a failed revocation stays pending for the sweep."""
    with transaction.atomic():
        account = (
            ConnectedAccount.objects.select_for_update()
            .select_related("provider")
            .filter(user_id=user_id, provider__key=provider_key)
            .first()
        )
        if account is None:
            raise ConnectorError("not_connected", f"no {provider_key!r} account to disconnect")
        account.status = ConnectedAccount.Status.REVOKED
        account.status_reason = "disconnected"
        account.refreshing_since = None
        account.revocation_pending = True
        account.save()
    if _revoke_and_forget(account):
        return account, Outcome(True, f"{provider_key} disconnected and revoked at the provider")
    return account, Outcome(True, f"{provider_key} disconnected; revocation at the provider is pending")


def retry_pending_revocations(*, limit: int = 100) -> int:
    """The sweep: retry revocations that failed. Returns how many completed."""
    done = 0
    pending = ConnectedAccount.objects.select_related("provider").filter(revocation_pending=True)[:limit]
    for account in pending:
        done += _revoke_and_forget(account)
    return done


def purge_authorization_requests(*, older_than: timedelta = timedelta(days=1)) -> int:
    deleted, _ = AuthorizationRequest.objects.filter(expires_at__lt=timezone.now() - older_than).delete()
    return deleted
