"""The token access service: the only reader of decrypted upstream tokens.

``access_token(user_id=..., provider_key=...)`` returns a usable access token, refreshing it first
when it expires within ``CONNECTORS_REFRESH_MARGIN_SECONDS``. A refresh is single-flight across
processes and machines:

1. a PostgreSQL session-level advisory lock keyed by (schema, account) serialises refreshers; it is
   held across the call to the provider and released by PostgreSQL when the process dies;
2. after acquiring it the account row is re-read under ``SELECT ... FOR UPDATE``: if another worker
   refreshed meanwhile, its token is used and the provider is not called;
3. the account is marked ``refreshing`` (with a timestamp) and that is committed before the provider
   is called, so a worker killed mid-refresh leaves a visible state;
4. the rotated refresh token is committed before the new access token is handed to anyone.

A ``refreshing`` mark found by the next refresher means the previous one died (or lost the answer):
it refreshes with the stored token; if the provider refuses it (it had already rotated), the account
becomes ``needs_reauth`` with reason ``refresh_lost``. ``invalid_grant`` otherwise gives
``needs_reauth``/``invalid_grant``; transient failures are retried (``connectors.upstream.refresh``)
and then raise ``ProviderUnavailable`` without changing the account.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from connectors import upstream
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount, Credential
from observability import audit, metrics

log = logging.getLogger(__name__)

Status = ConnectedAccount.Status


def _lock_key(account_id: int) -> int:
    raw = hashlib.sha256(f"connectors.refresh:{connection.schema_name}:{account_id}".encode()).digest()
    return int.from_bytes(raw[:8], "big", signed=True)


@contextmanager
def refresh_lock(account_id: int) -> Iterator[None]:
    """The cross-process single-flight guard for one account (session-level advisory lock)."""
    key = _lock_key(account_id)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{settings.CONNECTORS_LOCK_WAIT_SECONDS}s"])
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    except OperationalError as exc:
        raise ProviderUnavailable("refresh_busy", "another refresh of this account is still running") from exc
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _expiring(account: ConnectedAccount, margin_seconds: int | None = None) -> bool:
    if margin_seconds is None:
        margin_seconds = settings.CONNECTORS_REFRESH_MARGIN_SECONDS
    margin = timedelta(seconds=margin_seconds)
    return account.expires_at is not None and account.expires_at <= timezone.now() + margin


def _refuse_unusable(account: ConnectedAccount) -> None:
    if account.status in (Status.NEEDS_REAUTH, Status.REVOKED):
        raise ReauthRequired(account.status, f"the {account.provider.key} account needs to be connected again")


def access_token(*, user_id: int, provider_key: str) -> str:
    """A usable access token for the user's account at ``provider_key``."""
    account = (
        ConnectedAccount.objects.select_related("provider", "credential")
        # one query; only the access token is decrypted (not the refresh token or the client secret)
        .only(
            "id", "status", "expires_at", "provider__id", "provider__key", "credential__id", "credential__access_token"
        )
        .filter(user_id=user_id, provider__key=provider_key)
        .first()
    )
    if account is None:
        raise ReauthRequired("not_connected", f"no {provider_key} account is connected")
    _refuse_unusable(account)
    credential = getattr(account, "credential", None)
    if account.status == Status.ACTIVE and not _expiring(account) and credential is not None:
        return credential.access_token
    return refresh_account(account_id=account.pk)


def _mark_needs_reauth(account_id: int, reason: str) -> None:
    ConnectedAccount.objects.filter(pk=account_id).update(
        status=Status.NEEDS_REAUTH, status_reason=reason, refreshing_since=None, updated_at=timezone.now()
    )


@contextmanager
def _observed_refresh(account_id: int) -> Iterator[None]:
    outcome = "error"
    try:
        with metrics.stopwatch() as elapsed:
            try:
                yield
                outcome = "ok"
            except ProviderUnavailable:
                outcome = "unavailable"
                raise
            except ConnectorError as exc:
                outcome = "needs_reauth" if exc.code == "invalid_grant" else "error"
                raise
    finally:
        metrics.connector_refresh(connection.schema_name, outcome, elapsed[0])
        user_id = ConnectedAccount.objects.filter(pk=account_id).values_list("user_id", flat=True).first()
        audit.record(event="connector_refresh", outcome=outcome, user_id=user_id)


def refresh_account(*, account_id: int, margin_seconds: int | None = None) -> str:
    """Refresh under the single-flight guard (see the module docstring); returns the access token.
    ``margin_seconds``: refresh only if the token expires within it (re-checked under the lock)."""
    if connection.in_atomic_block:
        raise RuntimeError("refresh_account commits as it goes: call it outside a transaction")
    with refresh_lock(account_id):
        with transaction.atomic():
            account = ConnectedAccount.objects.select_for_update().select_related("provider").get(pk=account_id)
            _refuse_unusable(account)
            credential = Credential.objects.filter(account=account).first()
            if credential is None:
                raise ReauthRequired("not_connected", "the account has no credentials")
            if account.status == Status.ACTIVE and not _expiring(account, margin_seconds):
                return credential.access_token  # another worker refreshed while we waited
            interrupted = account.status == Status.REFRESHING
            if not credential.refresh_token:
                account.status, account.status_reason = Status.NEEDS_REAUTH, "expired"
                account.save(update_fields=["status", "status_reason", "updated_at"])
                raise ReauthRequired("expired", f"the {account.provider.key} token expired and cannot be refreshed")
            account.status = Status.REFRESHING
            account.refreshing_since = timezone.now()
            account.save(update_fields=["status", "refreshing_since", "updated_at"])
            provider, refresh_token = account.provider, credential.refresh_token
        # committed: the refreshing mark is visible; the lock still keeps other refreshers out
        attempt = upstream.RefreshOutcome()
        try:
            with _observed_refresh(account_id):  # observability: outcome, latency, audit event
                tokens = upstream.refresh(provider, refresh_token, attempt)
        except ProviderUnavailable:
            if not attempt.ambiguous:  # every try got an answer: nothing rotated, the account is as before
                ConnectedAccount.objects.filter(pk=account_id).update(status=Status.ACTIVE, refreshing_since=None)
            raise
        except ConnectorError as exc:
            reason = "refresh_lost" if (interrupted or attempt.ambiguous) else exc.code
            if exc.code == "invalid_grant":
                _mark_needs_reauth(account_id, reason)
                log.warning("connectors: account %s needs re-authorization (%s)", account_id, reason)
                raise ReauthRequired(reason, f"the {provider.key} account needs to be connected again") from exc
            ConnectedAccount.objects.filter(pk=account_id).update(status=Status.ACTIVE, refreshing_since=None)
            raise
        now = timezone.now()
        with transaction.atomic():
            account = ConnectedAccount.objects.select_for_update().get(pk=account_id)
            credential = Credential.objects.select_for_update().get(account=account)
            credential.access_token = tokens.access_token
            if tokens.refresh_token:  # rotated: the old one is dead at the provider from now on
                credential.refresh_token = tokens.refresh_token
            credential.token_type = tokens.token_type
            credential.save()
            account.status, account.status_reason, account.refreshing_since = Status.ACTIVE, "", None
            account.refresh_failures, account.refresh_failing_since, account.next_refresh_at = 0, None, None
            account.expires_at = now + timedelta(seconds=tokens.expires_in) if tokens.expires_in else None
            if tokens.scopes is not None:
                account.granted_scopes = tokens.scopes
            account.last_refreshed_at = now
            account.refresh_count += 1
            account.save()
        # committed: the rotated refresh token is durable before the access token is used
        log.info("connectors: account %s refreshed", account_id)
        return tokens.access_token
