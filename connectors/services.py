"""Writes of the connectors app: providers, connect flows, disconnect, the revocation sweep.

Every function is keyword-only; each database write is one transaction. Network calls to a provider
never run inside a transaction that holds a lock others wait on, except where stated: revocations a
write causes run after its commit (``_after_commit``; in the tenant admin, whose views are atomic,
once the admin's transaction committed).

Credentials and provider edits. The fields a member's tokens or the client secret are sent to
(``GRANT_FIELDS``: the issuer, every endpoint, the client id) are the provider's *grant target*.
Changing any of them ends every stored grant: the credentials move to ``RetiredGrant`` rows with a
snapshot of the provider as it was (so they are revoked at the *old* endpoints, never sent to the new
ones), the accounts become ``needs_reauth``/``provider_changed``, started connect attempts are dropped,
and the change needs the client secret entered again. Endpoints must follow ``connectors.endpoints``.
A deleted provider is soft-deleted (invisible, its key freed) until its grants are revoked, then removed
by the sweep (``purge_deleted_providers``). Every provider change is audited with who made it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from celery import signature
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify

from connectors import discovery, http, id_tokens, retired, timing, upstream
from connectors import endpoints as endpoint_rules
from connectors.endpoints import EndpointError
from connectors.errors import ConnectorError, ProviderUnavailable
from connectors.models import (
    ENDPOINT_FIELDS,
    AuthorizationRequest,
    ConnectedAccount,
    Credential,
    Provider,
    RetiredGrant,
)
from connectors.presets import documented_lifetime, preset, preset_names
from connectors.tokens import refresh_lock
from observability import audit
from tenants.models import Tenant
from tenants.services import Outcome

log = logging.getLogger(__name__)

Status = ConnectedAccount.Status
STATE_TTL = timedelta(minutes=10)
URL_FIELDS = ("issuer", *ENDPOINT_FIELDS, "mcp_endpoint", "api_base_url", "jwks_uri")
# where members' tokens and the client secret go: changing any of these ends every stored grant
GRANT_FIELDS = ("issuer", *ENDPOINT_FIELDS, "mcp_endpoint", "api_base_url", "client_id")
DISCOVERED_FIELDS = ("jwks_uri", "authorization_response_iss_parameter_supported")
INLINE_REVOCATIONS = 20  # revoked right after the change; the rest (or all, if the provider is down) by the sweep
AUDIT_EVENT = "connector_provider"
# the task ``connectors.tasks.sweep_after_event_in_tenant``, queued by its name (that module imports this one)
SWEEP_AFTER_EVENT = "connectors.sweep_after_event_in_tenant"
# a broker that does not answer at once: give up quickly, the periodic sweep will do it
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _after_commit(work: Callable[[], Any]) -> None:
    """Run ``work`` (provider calls) once the caller's transaction committed; at once outside one."""
    if connection.in_atomic_block:
        transaction.on_commit(work, robust=True)
    else:
        work()


def queue_upstream_sweep(tenant: Tenant, reason: str) -> None:
    """The tenant's upstream sweep, queued now (it retries what could not be revoked at once). Never
    raises: a broker that does not answer is logged, and the periodic sweep catches up."""
    try:
        signature(SWEEP_AFTER_EVENT, args=(tenant.schema_name,)).apply_async(retry_policy=PUBLISH_RETRY)
    except Exception:  # any broker error
        log.warning("connectors: could not queue the upstream sweep of %s after %s", tenant.schema_name, reason)


def _queue_sweep(reason: str) -> None:
    queue_upstream_sweep(connection.tenant, reason)


def _audit(outcome: str, key: str, *, actor_user_id: int | None, request: HttpRequest | None, source: str) -> None:
    """Who changed which provider: the admin's user id and address, or ``client_id`` "cli" for the CLI."""
    audit.record(
        event=AUDIT_EVENT,
        outcome=outcome,
        user_id=actor_user_id,
        client_id="cli" if source == "cli" else "",
        tool=f"provider:{key}",
        request=request,
    )


# --- providers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderCheck:
    """What ``check_provider`` found: the grant-target fields that change, and, when the issuer is new
    or changed, what its discovery document says (``discovered``; empty when it has none)."""

    grant_fields_changed: tuple[str, ...]
    discovered: dict[str, Any] | None


def _grant_target(values: Any) -> tuple[str, ...]:
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name)
    return tuple(str(get(name) or "") for name in GRANT_FIELDS)


def check_provider(*, current: Provider | None, values: dict[str, Any], secret_entered: bool) -> ProviderCheck:
    """Refuse new values for a provider (``current``: as stored, None for a new one) with an
    ``EndpointError`` naming the field: every URL https (loopback http in development), the endpoints
    under ``connectors.endpoints``' rule, a client secret unless the client is public, and the secret
    entered again when a grant-target field changes (otherwise the stored secret would be sent to the
    new endpoints)."""
    for name in URL_FIELDS:
        if values.get(name):
            try:
                http.check_url(values[name])
            except http.OutboundError as exc:
                raise EndpointError(exc.code, f"{name}: {exc}", field=name) from exc
    for name in ("authorization_endpoint", "token_endpoint"):
        if not values.get(name):
            raise EndpointError("missing_endpoint", "authorization and token endpoints are required", field=name)
    method = values.get("token_endpoint_auth_method") or Provider.AuthMethod.BASIC
    if method not in Provider.AuthMethod.values:
        allowed = ", ".join(Provider.AuthMethod.values)
        raise EndpointError(
            "invalid_auth_method", f"auth method must be one of {allowed}", field="token_endpoint_auth_method"
        )
    changed = () if current is None else tuple(
        name for name, old, new in zip(GRANT_FIELDS, _grant_target(current), _grant_target(values), strict=True)
        if old != new
    )
    if method != Provider.AuthMethod.NONE and not secret_entered:
        if current is None or not current.client_secret:
            raise EndpointError("client_secret_required", f"{method} needs a client secret", field="client_secret")
        if changed:
            raise EndpointError(
                "client_secret_required_for_change",
                f"enter the client secret again to change {', '.join(changed)}: the change ends every member's "
                "connection, and the stored secret is never sent to new endpoints",
                field="client_secret",
            )
    issuer = values.get("issuer") or ""
    discovered = None
    if current is None or (current.issuer or "") != issuer:
        discovered = {}
        if issuer and "{" not in issuer:  # a templated issuer (Entra multi-tenant) has no document of its own
            try:
                discovered = discovery.discover(issuer)
            except ConnectorError:
                discovered = {}
    preset_name = values.get("preset", current.preset if current is not None else "") or ""
    endpoint_rules.check(values, preset_name=preset_name, document=discovered if issuer else None)
    return ProviderCheck(changed, discovered)


def _end_grants(provider: Provider, *, reason: str) -> int:
    """Every stored grant of ``provider`` (as it is now: call before changing it) retired for revocation
    at its current endpoints; its accounts must connect again. Returns how many accounts that affects."""
    now = timezone.now()
    retired.retire_credentials(provider=provider, reason=reason)
    accounts = ConnectedAccount.objects.filter(provider=provider)
    affected = accounts.exclude(status=Status.REVOKED).update(
        status=Status.NEEDS_REAUTH,
        status_reason=reason,
        refreshing_since=None,
        refresh_failures=0,
        refresh_failing_since=None,
        next_refresh_at=None,
        credential_generation=F("credential_generation") + 1,
        updated_at=now,
    )
    # disconnected accounts still waiting for their revocation: the retired grant carries it now
    accounts.filter(status=Status.REVOKED).update(
        revocation_pending=False,
        revocation_attempts=0,
        next_revocation_at=None,
        credential_generation=F("credential_generation") + 1,
        updated_at=now,
    )
    AuthorizationRequest.objects.filter(provider=provider, consumed_at__isnull=True).delete()
    return affected


def _revoke_retired_soon(provider_id: int) -> Callable[[], tuple[int, int]]:
    def work() -> tuple[int, int]:
        revoked, pending = retired.revoke_some(retired.pending(provider_id=provider_id), limit=INLINE_REVOCATIONS)
        if pending:
            _queue_sweep("provider_changed")
        return revoked, pending

    return work


def _write_provider(
    *,
    key: str,
    fields: dict[str, Any],
    secret_entered: bool,
    actor_user_id: int | None,
    request: HttpRequest | None,
    source: str,
    pk: int | None = None,
) -> tuple[Provider, Outcome]:
    """Create or update (by ``pk``, else by ``key``) under the provider's row lock; a changed grant target
    ends the stored grants in the same transaction (``_end_grants``, with the old values)."""
    fields = {k: v for k, v in fields.items() if k in {f.name for f in Provider._meta.concrete_fields}}
    fields.pop("id", None)
    with transaction.atomic():
        found = Provider.objects.select_for_update()
        provider = (found.filter(pk=pk) if pk is not None else found.filter(key=key)).first()
        if provider is None:
            provider = Provider.objects.create(**{**fields, "key": key})
            _audit("created", key, actor_user_id=actor_user_id, request=request, source=source)
            return provider, Outcome(True, f"provider {key!r} added")
        changed = sorted(name for name, value in {**fields, "key": key}.items() if getattr(provider, name) != value)
        if not changed:
            return provider, Outcome(False, f"provider {key!r} already exists")
        grant_changed = [name for name in GRANT_FIELDS if name in changed]
        ended = 0
        if grant_changed:
            needs_secret = fields.get("token_endpoint_auth_method") != Provider.AuthMethod.NONE
            if needs_secret and not secret_entered:  # re-checked under the lock
                raise EndpointError(
                    "client_secret_required_for_change", "enter the client secret again", field="client_secret"
                )
            ended = _end_grants(provider, reason="provider_changed")
        for name in changed:
            setattr(provider, name, key if name == "key" else fields[name])
        provider.save()
        _audit(
            "grant_target_changed" if grant_changed else "updated",
            key,
            actor_user_id=actor_user_id,
            request=request,
            source=source,
        )
        detail = f"provider {key!r} updated ({', '.join(changed)})"
        if grant_changed:
            detail += f"; {ended} connected account(s) must connect again (grants revoked at the old endpoints)"
            _after_commit(_revoke_retired_soon(provider.pk))
        return provider, Outcome(True, detail)


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
    """Create or update the provider ``key`` from a preset, an issuer (discovery) or explicit endpoints
    (``connector_provider_add``). Idempotent: the same facts again change nothing; other facts update
    the provider in place, under the rules of ``check_provider`` (the CLI always passes the secret)."""
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
    method = fields.get("token_endpoint_auth_method") or Provider.AuthMethod.BASIC
    fields.update(client_id=client_id, client_secret=client_secret if method != Provider.AuthMethod.NONE else "")
    current = Provider.objects.filter(key=key).first()
    kept = {name: getattr(current, name) for name in (*GRANT_FIELDS, "preset")} if current is not None else {}
    values = {**kept, **fields, "preset": preset_name or kept.get("preset", "")}  # what it will be once saved
    check_provider(current=current, values=values, secret_entered=bool(client_secret))
    return _write_provider(
        key=key, fields=fields, secret_entered=bool(client_secret), actor_user_id=None, request=None, source="cli"
    )


def save_provider(
    *, provider: Provider, check: ProviderCheck, secret_entered: bool, actor_user_id: int, request: HttpRequest
) -> tuple[Provider, Outcome]:
    """The tenant admin's save: ``provider`` holds the form's values (its pk set when editing), already
    checked by ``check_provider`` (``check``). The discovery metadata follows the issuer."""
    fields = {f.name: getattr(provider, f.name) for f in Provider._meta.concrete_fields}
    for name in ("id", "key", "created_at", "updated_at", "deleted_at"):
        fields.pop(name)
    if check.discovered is not None:  # new or changed issuer: what its document says, nothing if none
        found = discovery.provider_fields(check.discovered) if check.discovered else {}
        fields.update({name: found.get(name, Provider._meta.get_field(name).default) for name in DISCOVERED_FIELDS})
    return _write_provider(
        key=provider.key,
        fields=fields,
        secret_entered=secret_entered,
        actor_user_id=actor_user_id,
        request=request,
        source="admin",
        pk=provider.pk,
    )


def _finish_deletion(provider_id: int) -> Callable[[], None]:
    def work() -> None:
        pending_accounts = ConnectedAccount.objects.select_related("provider").filter(
            provider_id=provider_id, revocation_pending=True
        )
        for account in pending_accounts[:INLINE_REVOCATIONS]:
            if not retired.revoke_account(account):
                break
        retired.revoke_some(retired.pending(provider_id=provider_id), limit=INLINE_REVOCATIONS)
        if not purge_deleted_providers(provider_id=provider_id):
            _queue_sweep("provider_deleted")

    return work


def delete_provider(
    *, provider_id: int, actor_user_id: int | None, request: HttpRequest | None = None, source: str = "admin"
) -> Outcome:
    """Soft-delete: the provider disappears at once (lists, connect pages, tools, its key is free again),
    its accounts are disconnected (revocation pending, as a user's disconnect) and it is removed once
    every grant issued through it is revoked (now, or by the sweep when the provider is down)."""
    now = timezone.now()
    with transaction.atomic():
        provider = Provider.objects.select_for_update().filter(pk=provider_id).first()
        if provider is None:
            return Outcome(False, "no such provider")
        key = provider.key
        accounts = ConnectedAccount.objects.filter(provider=provider)
        Credential.objects.filter(account__provider=provider).update(generation=F("generation") + 1)
        ended = accounts.filter(Q(credential__isnull=False) | ~Q(status=Status.REVOKED)).update(
            status=Status.REVOKED,
            status_reason="provider_deleted",
            refreshing_since=None,
            revocation_pending=True,
            next_revocation_at=None,
            updated_at=now,
        )
        accounts.update(credential_generation=F("credential_generation") + 1)
        AuthorizationRequest.objects.filter(provider=provider, consumed_at__isnull=True).delete()
        provider.deleted_at = now
        provider.key = f"~{provider.pk}~{key}"[:64]  # frees the key; "~" is never in a usable key
        provider.save(update_fields=["deleted_at", "key", "updated_at"])
        _audit("deleted", key, actor_user_id=actor_user_id, request=request, source=source)
    _after_commit(_finish_deletion(provider_id))
    return Outcome(True, f"provider {key!r} deleted; {ended} connected account(s) disconnected and revoked")


def purge_deleted_providers(*, provider_id: int | None = None) -> int:
    """Remove deleted providers with nothing left to revoke (their accounts and connect attempts with
    them). Returns how many were removed."""
    removed = 0
    deleted = Provider.all_objects.filter(deleted_at__isnull=False)
    if provider_id is not None:
        deleted = deleted.filter(pk=provider_id)
    for provider in deleted:
        if ConnectedAccount.objects.filter(provider=provider, revocation_pending=True).exists():
            continue
        if RetiredGrant.objects.filter(provider=provider).exists():
            continue
        provider.delete()
        _audit("removed", provider.key.split("~", 2)[-1], actor_user_id=None, request=None, source="sweep")
        removed += 1
    return removed


def sweep_provider_leftovers() -> dict[str, int]:
    """``connectors.sweep``: retired grants revoked (with backoff), deleted providers removed."""
    counts = retired.sweep()
    counts["providers_removed"] = purge_deleted_providers()
    return counts


# --- connect ----------------------------------------------------------------------------------------


def _end_previous_grant(account: ConnectedAccount, provider: Provider) -> None:
    """A reconnect: the account's current grant is revoked *before* the user is sent to the provider.
    Many providers keep one grant per user and client (Google; npm oidc-provider reuses the session's
    grant) and revoke all of it when any of its tokens is revoked: revoking the previous refresh token
    after the new one was issued would revoke the new one too. The refresh state starts afresh.
    ``ProviderUnavailable`` when a previous grant at this provider cannot be revoked now: the user
    retries, rather than getting a grant the sweep would later revoke with the old one."""
    if account.revocation_pending and not retired.revoke_account(account):
        raise ProviderUnavailable("revocation_pending", "the previous connection could not be revoked yet")
    with transaction.atomic():
        locked = ConnectedAccount.objects.select_for_update().get(pk=account.pk)
        had_credential = retired.retire_credentials(provider=provider, reason="reconnected", account_id=locked.pk)
        if had_credential or locked.status in (Status.ACTIVE, Status.REFRESHING):
            if locked.status != Status.REVOKED:
                locked.status, locked.status_reason = Status.NEEDS_REAUTH, "reconnecting"
            locked.refreshing_since = locked.next_refresh_at = locked.refresh_failing_since = None
            locked.refresh_failures = 0
            locked.credential_generation += 1
            locked.save()
    same_server = retired.pending(account_id=account.pk).filter(
        revocation_endpoint=provider.revocation_endpoint, client_id=provider.client_id
    )
    _, left = retired.revoke_some(same_server, limit=INLINE_REVOCATIONS)
    if left:
        raise ProviderUnavailable("revocation_pending", "the previous connection could not be revoked yet")


def start_connect(*, user_id: int, provider: Provider, redirect_uri: str) -> str:
    """Record a connect attempt and return the provider's authorization URL to redirect to; a reconnect
    first ends the account's current grant (``_end_previous_grant``).

    The ``state`` is bound to the user, the provider and (by the schema it is stored in) the tenant,
    not to the login session: if the session expires during the round trip at the provider, the user
    logs in again and the callback still completes. Only the same user can complete it (an attacker's
    state in a victim's browser is refused: login CSRF), once, within ten minutes."""
    account = ConnectedAccount.objects.filter(user_id=user_id, provider=provider).first()
    if account is not None:
        _end_previous_grant(account, provider)
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
        if request is None or request.provider.deleted_at is not None:
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


def _check_response_issuer(provider: Provider, iss: str) -> None:
    """RFC 9207: ``iss`` on the authorization response must be the provider's issuer; required when
    its discovery document says it always sends it (without an issuer to compare, e.g. GitHub, there
    is nothing to check)."""
    if iss:
        if provider.issuer and not id_tokens.issuer_matches(provider, iss):
            raise ConnectorError("issuer_mismatch", "the answer comes from another issuer (RFC 9207)")
    elif provider.authorization_response_iss_parameter_supported:
        raise ConnectorError("issuer_missing", "the provider always names itself (iss) and this answer does not")


def _identity(provider: Provider, tokens: upstream.TokenSet, *, nonce: str) -> dict[str, Any]:
    identity: dict[str, Any] = {}
    if tokens.id_token:
        identity = id_tokens.verify(provider, tokens.id_token, nonce=nonce)
    elif nonce and provider.issuer:
        raise ConnectorError("id_token_missing", "the provider sent no ID token for an OpenID request")
    if provider.userinfo_endpoint:
        info = upstream.userinfo(provider, tokens.access_token)
        if identity.get("sub") and info.get("sub") and info["sub"] != identity["sub"]:
            raise ConnectorError("identity_mismatch", "userinfo and ID token name different subjects")
        identity = {**identity, **info}
    return identity


class _ProviderChanged(Exception):
    pass


def complete_connect(*, params: CallbackParams, user_id: int) -> ConnectedAccount:
    """The callback: accept the state once, check the issuer (RFC 9207), exchange the code, check the
    ID token and read userinfo, then store the account and its credential. Every failure raises a
    ``ConnectorError`` and stores no account data; tokens obtained and then refused are revoked."""
    request = _consume_state(state=params.state, user_id=user_id)
    provider = request.provider
    _check_response_issuer(provider, params.iss)
    if params.error:
        code = "access_denied" if params.error == "access_denied" else "provider_error"
        raise ConnectorError(code, f"the provider answered {params.error}")
    if not params.code:
        raise ConnectorError("missing_code", "the provider's answer carries no code")
    tokens = upstream.exchange_code(
        provider, code=params.code, redirect_uri=request.redirect_uri, code_verifier=request.code_verifier
    )
    try:
        identity = _identity(provider, tokens, nonce=request.nonce)
    except ConnectorError:
        retired.discard(provider=provider, tokens=tokens, reason="refused_at_connect")
        raise
    try:
        account = _store_connection(provider, user_id=user_id, request=request, tokens=tokens, identity=identity)
    except _ProviderChanged:  # edited or deleted while the user was at the provider: revoke at the old endpoints
        retired.discard(provider=provider, tokens=tokens, reason="provider_changed")
        raise ConnectorError("provider_changed", "the provider's settings changed meanwhile; start again") from None
    log.info("connectors: account %s connected to %s", account.pk, provider.key)
    return account


def _store_connection(
    provider: Provider,
    *,
    user_id: int,
    request: AuthorizationRequest,
    tokens: upstream.TokenSet,
    identity: dict[str, Any],
) -> ConnectedAccount:
    """Write the account and its credential under the account's single-flight lock (the one a refresh
    holds across its provider call), with a new credential generation: a refresh still in flight finds
    its generation gone and does not store (it revokes what it got). A lock held longer than
    ``CONNECTORS_LOCK_WAIT_SECONDS`` is not waited for: the generation alone stops that refresh."""
    external_id = str(identity.get(provider.account_id_claim) or identity.get("sub") or "")[:255]
    existing = ConnectedAccount.objects.filter(user_id=user_id, provider=provider).values_list("pk", flat=True).first()
    with ExitStack() as stack:
        if existing is not None:
            try:
                stack.enter_context(refresh_lock(existing))
            except ProviderUnavailable:
                log.warning("connectors: account %s connected while a refresh still holds its lock", existing)
        with transaction.atomic():
            current = Provider.all_objects.select_for_update().get(pk=provider.pk)
            if current.deleted_at is not None or _grant_target(current) != _grant_target(provider):
                raise _ProviderChanged()
            account, _ = ConnectedAccount.objects.select_for_update().get_or_create(user_id=user_id, provider=provider)
            previous = Credential.objects.filter(account=account).first()
            if previous is not None and account.external_account_id != external_id:
                # another connect of this user completed meanwhile, as another upstream account: its
                # grant is revoked (as the same upstream account it may be this very grant: just replaced)
                retired.retire_tokens(
                    provider=current,
                    reason="replaced",
                    access_token=previous.access_token,
                    refresh_token=previous.refresh_token,
                    account_id=account.pk,
                )
            account.status = Status.ACTIVE
            account.status_reason = ""
            account.revocation_pending = False
            account.refreshing_since = account.refresh_failing_since = account.next_refresh_at = None
            account.refresh_failures = 0
            account.revocation_attempts, account.next_revocation_at = 0, None
            account.credential_generation += 1
            account.external_account_id = external_id
            label = identity.get("email") or identity.get("login") or identity.get("name") or ""
            account.external_account_label = str(label)[:255]
            account.requested_scopes = list(request.scopes)
            account.granted_scopes = tokens.scopes if tokens.scopes is not None else list(request.scopes)
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
                    "generation": account.credential_generation,
                },
            )
    _after_commit(lambda: retired.revoke_some(retired.pending(account_id=account.pk), limit=INLINE_REVOCATIONS))
    return account


# --- disconnect and the revocation sweep ------------------------------------------------------------


def _mark_revoked(account: ConnectedAccount, reason: str) -> None:
    """Revoked, pending revocation at the provider; a refresh in flight can no longer store."""
    account.status = Status.REVOKED
    account.status_reason = reason
    account.refreshing_since = None
    account.revocation_pending = True
    account.credential_generation += 1
    account.save()
    Credential.objects.filter(account=account).update(generation=account.credential_generation)


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
        _mark_revoked(account, "disconnected")
    if retired.revoke_account(account):
        return account, Outcome(True, f"{provider_key} disconnected and revoked at the provider")
    return account, Outcome(True, f"{provider_key} disconnected; revocation at the provider is pending")


def disconnect_account(*, account_id: int, actor_user_id: int, request: HttpRequest | None = None) -> Outcome:
    """The tenant admin's "delete" of a connected account: the same disconnect (revoked at the provider
    after the admin's transaction commits, retried by the sweep when it is down). An account with
    nothing left to revoke is deleted."""
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update().select_related("provider").get(pk=account_id)
        key = account.provider.key
        nothing_left = not account.revocation_pending and not Credential.objects.filter(account=account).exists()
        if account.status == Status.REVOKED and nothing_left:
            account.delete()
            _audit("account_deleted", key, actor_user_id=actor_user_id, request=request, source="admin")
            return Outcome(True, "deleted (nothing left to revoke)")
        _mark_revoked(account, "admin_disconnected")
        _audit("account_disconnected", key, actor_user_id=actor_user_id, request=request, source="admin")

    def revoke() -> None:
        if not retired.revoke_account(account):
            _queue_sweep("account_disconnected")

    _after_commit(revoke)
    return Outcome(True, "disconnected; revoked at the provider (or by the sweep while it is unavailable)")


def claim_forced_refresh(*, account_id: int) -> float | None:
    """A refresh the user asked for ("refresh now"): at most one per account every
    ``CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS`` (one conditional UPDATE, so concurrent requests on any
    process get one claim). None: go ahead (claimed); otherwise the seconds left to wait."""
    now = timezone.now()
    interval = timedelta(seconds=settings.CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS)
    claimed = (
        ConnectedAccount.objects.filter(pk=account_id)
        .filter(Q(forced_refresh_at__isnull=True) | Q(forced_refresh_at__lte=now - interval))
        .update(forced_refresh_at=now)
    )
    if claimed:
        return None
    last = ConnectedAccount.objects.filter(pk=account_id).values_list("forced_refresh_at", flat=True).first()
    if last is None:
        return None
    return min(interval.total_seconds(), max(1.0, (last + interval - timezone.now()).total_seconds()))


def purge_authorization_requests(*, older_than: timedelta = timedelta(days=1)) -> int:
    deleted, _ = AuthorizationRequest.objects.filter(expires_at__lt=timezone.now() - older_than).delete()
    return deleted
