"""The token access service: the only reader of decrypted upstream tokens.

``access_token(user_id=..., provider_key=...)`` returns a usable access token, refreshing it first
when it is due on demand (``connectors.timing``: its remaining life is under min(
``CONNECTORS_REFRESH_MARGIN_SECONDS``, a quarter of its lifetime)). Otherwise a token is refreshed only
by the proactive job (``refresh_claimed``, the job's rule) or *forced*: after the provider refused it
(``refresh_refused``: an upstream 401; nothing happens if another caller already replaced that token)
or by an explicit, throttled user action (``refresh_account(force=True)``). A refresh is
single-flight across processes and machines:

1. a PostgreSQL session-level advisory lock keyed by (schema, account) serialises refreshers; it is
   held across the call to the provider and released by PostgreSQL when the process dies;
2. after acquiring it the account row is re-read under a row lock: if another worker refreshed
   meanwhile, its token is used and the provider is not called;
3. the account is marked ``refreshing`` (with a timestamp) and that is committed before the provider
   is called, so a worker killed mid-refresh leaves a visible state;
4. the rotated refresh token is committed (durably) before the new access token is handed to anyone.

A ``refreshing`` mark found by the next refresher means the previous one died: it refreshes with the
stored token; if the provider refuses it (it had already rotated), the account becomes
``needs_reauth`` with reason ``refresh_lost``. A refresh that failed without a usable answer (a
timeout, garbage) puts the account back to ``active`` with reason ``refresh_unconfirmed``, which
counts the same way, so no failure leaves an account ``refreshing``. ``invalid_grant`` otherwise
gives ``needs_reauth``/``invalid_grant``; transient failures are retried (``connectors.upstream``)
and then raise ``ProviderUnavailable`` without changing the account's tokens (a rotated refresh
token that arrived in an unusable answer is kept). The provider's breaker (``connectors.breaker``)
is asked before the call; while it is open nobody calls, and a caller whose current token has not
expired yet simply gets that one.

Cost of one refresh (the proactive job runs thousands a minute): four round trips to PostgreSQL and
one durable commit. ``pg_try_advisory_lock`` (the blocking form, with ``lock_timeout``, only when
another refresher holds it); one ``UPDATE ... RETURNING`` that locks the row, re-checks it, marks it
``refreshing`` and returns the stored refresh token (2. and 3.); after the provider call one
statement writing the credential and the account together (4.); the unlock. The ``refreshing`` mark
commits with ``synchronous_commit = off``: it is visible to every other session at once, only a crash
of the PostgreSQL server itself within ~0.6 s could lose it, and then the rotated tokens (committed
durably, which flushes the mark with them) were not stored either; the next refresher then sees
``active`` instead of ``refreshing`` and a refused old token is reported as ``invalid_grant`` instead
of ``refresh_lost`` (``needs_reauth`` either way). The rare cases (nothing to refresh, an unusable or
unrefreshable account) take the ORM path, ``_mark_or_settle``. The two statements are hand-written
SQL for the round trips; they mirror ``_mark_or_settle`` and ``Credential``/``ConnectedAccount``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction

from connectors import breaker, clock, presets, retired, statements, timing, upstream
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount, Credential, Provider
from observability import audit, metrics

log = logging.getLogger(__name__)

Status = ConnectedAccount.Status
UNCONFIRMED = "refresh_unconfirmed"  # status_reason of an active account whose last refresh got no usable answer


class RefreshBusy(ProviderUnavailable):
    """Another process is refreshing this account right now (the proactive job does not wait)."""

    def __init__(self) -> None:
        super().__init__("refresh_busy", "another refresh of this account is running")


@dataclass(frozen=True)
class Refreshed:
    access_token: str = field(repr=False)
    refreshed: bool  # False: it was fresh already (another refresher did it while we waited)
    user_id: int | None = None
    refreshed_at: datetime | None = None


@dataclass(frozen=True)
class _Marked:
    """An account marked ``refreshing`` by this process, with what the provider call needs."""

    interrupted: bool  # it was ``refreshing`` (a previous refresher died) or its last refresh is unconfirmed
    user_id: int
    provider_id: int
    refresh_token: str = field(repr=False)
    provider: Provider | None = None
    generation: int = 0  # the credential's, when read: the store needs it unchanged


def _lock_key(account_id: int) -> int:
    raw = hashlib.sha256(f"connectors.refresh:{connection.schema_name}:{account_id}".encode()).digest()
    return int.from_bytes(raw[:8], "big", signed=True)


def _try_lock(key: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


def _wait_lock(key: int) -> None:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{settings.CONNECTORS_LOCK_WAIT_SECONDS}s"])
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    except OperationalError as exc:
        raise ProviderUnavailable("refresh_busy", "another refresh of this account is still running") from exc


def _unlock(key: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    except DatabaseError:  # the session is broken: closing it is what releases the lock
        connection.close()
        raise


@contextmanager
def refresh_lock(account_id: int, *, wait: bool = True) -> Iterator[None]:
    """The cross-process single-flight guard for one account (session-level advisory lock). Without
    ``wait``, ``RefreshBusy`` when another process holds it."""
    key = _lock_key(account_id)
    if not _try_lock(key):
        if not wait:
            raise RefreshBusy()
        _wait_lock(key)
    try:
        yield
    finally:
        _unlock(key)


def _refuse_unusable(account: ConnectedAccount) -> None:
    if account.status in (Status.NEEDS_REAUTH, Status.REVOKED):
        raise ReauthRequired(account.status, f"the {account.provider.key} account needs to be connected again")


def _account_of(user_id: int, provider_key: str) -> ConnectedAccount:
    account = (
        ConnectedAccount.objects.select_related("provider", "credential")
        # one query; only the access token is decrypted (not the refresh token or the client secret)
        .only(
            "id",
            "status",
            "expires_at",
            "token_lifetime_seconds",
            "provider__id",
            "provider__key",
            "credential__id",
            "credential__access_token",
        )
        .filter(user_id=user_id, provider__key=provider_key)
        .first()
    )
    if account is None:
        raise ReauthRequired("not_connected", f"no {provider_key} account is connected")
    _refuse_unusable(account)
    return account


def access_token(*, user_id: int, provider_key: str) -> str:
    """A usable access token for the user's account at ``provider_key``."""
    account = _account_of(user_id, provider_key)
    credential = getattr(account, "credential", None)
    now = clock.now()
    due = timing.is_due(
        timing.on_demand(), expires_at=account.expires_at, lifetime=account.token_lifetime_seconds, now=now
    )
    if account.status == Status.ACTIVE and credential is not None and not due:
        return credential.access_token
    try:
        return refresh_account(account_id=account.pk)
    except ProviderUnavailable:
        # the provider is down or backing off, but the token we hold still works for a while
        if credential is not None and account.expires_at is not None and account.expires_at > clock.now():
            return credential.access_token
        raise


def refresh_refused(*, user_id: int, provider_key: str, refused_token: str) -> str:
    """The provider refused ``refused_token`` (an upstream 401): refresh now, whatever its age,
    unless another caller has replaced it meanwhile (then that token: twenty calls refused at once
    make one refresh)."""
    account = _account_of(user_id, provider_key)
    return _refresh(account.pk, None, wait=True, refused_token=refused_token).access_token


def _mark_needs_reauth(account_id: int, reason: str) -> None:
    ConnectedAccount.objects.filter(pk=account_id).update(
        status=Status.NEEDS_REAUTH, status_reason=reason, refreshing_since=None, updated_at=clock.now()
    )


def _unmark(account_id: int, *, unconfirmed: bool) -> None:
    """A refresh that ended without new tokens: the account is ``active`` again (never left
    ``refreshing``); ``unconfirmed`` when the provider may have rotated (no usable answer)."""
    fields = {"status": Status.ACTIVE, "refreshing_since": None}
    if unconfirmed:
        fields["status_reason"] = UNCONFIRMED
    ConnectedAccount.objects.filter(pk=account_id, status=Status.REFRESHING).update(**fields)


# --- the two hand-written statements (see the module docstring): connectors.statements ---------------


def _mark(account_id: int, rule: timing.Rule, now: datetime) -> _Marked | None:
    with connection.cursor() as cursor:
        cursor.execute(statements.MARK, {"id": account_id, "unconfirmed": UNCONFIRMED, **timing.due_params(rule, now)})
        row = cursor.fetchone()
    if row is None:
        return None
    interrupted, user_id, provider_id, raw_refresh, generation = row
    refresh_token = statements.REFRESH_TOKEN.from_db_value(bytes(raw_refresh), None, connection)
    return _Marked(bool(interrupted), user_id, provider_id, refresh_token, generation=generation)


def _store(account_id: int, tokens: upstream.TokenSet, times: timing.TokenTimes, generation: int) -> bool:
    refresh, scopes = statements.REFRESH_TOKEN, statements.GRANTED_SCOPES
    params = {
        "id": account_id,
        "generation": generation,
        "now": times.issued_at,
        "access": statements.ACCESS_TOKEN.get_db_prep_save(tokens.access_token, connection),
        "refresh": refresh.get_db_prep_save(tokens.refresh_token, connection) if tokens.refresh_token else None,
        "token_type": tokens.token_type,
        "expires_at": times.expires_at,
        "lifetime": times.lifetime,
        "scopes": scopes.get_db_prep_save(tokens.scopes, connection) if tokens.scopes is not None else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(statements.STORE, params)
        return cursor.fetchone() is not None


def _keep_rotated(account_id: int, refresh_token: str, generation: int) -> None:
    """The provider rotated but its answer was unusable: keep the new refresh token (the old one
    is dead at the provider), leave the access token and its expiry as they were; only into the
    credential generation it was refreshed for."""
    Credential.objects.filter(account_id=account_id, generation=generation).update(
        refresh_token=refresh_token, updated_at=clock.now()
    )


def _mark_or_settle(
    account_id: int, rule: timing.Rule | None, refused_token: str | None, now: datetime
) -> _Marked | Refreshed:
    """The general case, through the ORM: refuse an unusable account, answer a fresh one (not due by
    ``rule``; for a forced refresh, ``rule`` None: one whose refused token was replaced already), mark
    an unrefreshable one ``needs_reauth``, or mark it ``refreshing``."""
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update().select_related("provider").get(pk=account_id)
        _refuse_unusable(account)
        credential = Credential.objects.filter(account=account).first()
        if credential is None:
            raise ReauthRequired("not_connected", "the account has no credentials")
        if account.status == Status.ACTIVE:
            fresh = Refreshed(credential.access_token, refreshed=False, user_id=account.user_id)
            lifetime = account.token_lifetime_seconds
            if rule is not None:
                if not timing.is_due(rule, expires_at=account.expires_at, lifetime=lifetime, now=now):
                    return fresh
            elif refused_token is not None and credential.access_token != refused_token:
                return fresh  # another caller replaced the refused token already
        interrupted = account.status == Status.REFRESHING or account.status_reason == UNCONFIRMED
        if not credential.refresh_token:
            account.status, account.status_reason = Status.NEEDS_REAUTH, "expired"
            account.save(update_fields=["status", "status_reason", "updated_at"])
            raise ReauthRequired("expired", f"the {account.provider.key} token expired and cannot be refreshed")
        account.status = Status.REFRESHING
        account.refreshing_since = now
        account.save(update_fields=["status", "refreshing_since", "updated_at"])
        return _Marked(
            interrupted,
            account.user_id,
            account.provider_id,
            credential.refresh_token,
            account.provider,
            generation=credential.generation,
        )


def _call_provider(
    provider: Provider, marked: _Marked, attempt: upstream.RefreshOutcome, deferred_ok: list[int] | None
) -> upstream.TokenSet:
    """The provider call, observed: outcome and latency in the metrics (also per provider), one
    ``connector_refresh`` audit event (a success may be handed to the caller, ``deferred_ok``, to
    record in bulk). A refusal by the breaker or the concurrency bound made no call: not observed."""
    admission = breaker.admit(provider)
    outcome = "error"
    started = time.monotonic()
    try:
        tokens = upstream.refresh(provider, marked.refresh_token, attempt, admission)
        outcome = "ok"
        return tokens
    except ProviderUnavailable:
        outcome = "unavailable"
        raise
    except ConnectorError as exc:
        outcome = "needs_reauth" if exc.code == "invalid_grant" else "error"
        raise
    finally:
        if attempt.attempts:
            elapsed = time.monotonic() - started
            metrics.connector_refresh(connection.schema_name, outcome, elapsed)
            metrics.provider_refresh(connection.schema_name, provider.key, outcome)
            if outcome == "ok" and deferred_ok is not None:
                deferred_ok.append(marked.user_id)
            else:
                audit.record(event="connector_refresh", outcome=outcome, user_id=marked.user_id)


def _provider_of(marked: _Marked, providers: dict[int, Provider] | None) -> Provider:
    provider = marked.provider or (providers or {}).get(marked.provider_id)
    if provider is None:
        provider = Provider.objects.get(pk=marked.provider_id)
        if providers is not None:
            providers[provider.pk] = provider
    return provider


def _refresh(
    account_id: int,
    rule: timing.Rule | None,
    *,
    wait: bool,
    refused_token: str | None = None,
    providers: dict[int, Provider] | None = None,
    deferred_ok: list[int] | None = None,
) -> Refreshed:
    """Refresh if due by ``rule`` (None: forced) under the single-flight guard."""
    if connection.in_atomic_block:
        raise RuntimeError("refresh_account commits as it goes: call it outside a transaction")
    with refresh_lock(account_id, wait=wait):
        now = clock.now()
        marked = (_mark(account_id, rule, now) if rule is not None else None) or _mark_or_settle(
            account_id, rule, refused_token, now
        )
        if isinstance(marked, Refreshed):
            return marked  # another worker refreshed while we waited, or nothing is due
        # committed: the refreshing mark is visible; the lock still keeps other refreshers out
        provider = _provider_of(marked, providers)
        attempt = upstream.RefreshOutcome()
        try:
            tokens = _call_provider(provider, marked, attempt, deferred_ok)
        except ProviderUnavailable:
            if attempt.rotated_refresh_token:  # an unusable answer carried the rotated refresh token
                _keep_rotated(account_id, attempt.rotated_refresh_token, marked.generation)
            _unmark(account_id, unconfirmed=attempt.ambiguous)
            raise
        except ConnectorError as exc:
            reason = "refresh_lost" if (marked.interrupted or attempt.ambiguous) else exc.code
            if exc.code == "invalid_grant":
                _mark_needs_reauth(account_id, reason)
                log.warning("connectors: account %s needs re-authorization (%s)", account_id, reason)
                raise ReauthRequired(reason, f"the {provider.key} account needs to be connected again") from exc
            _unmark(account_id, unconfirmed=attempt.ambiguous)
            raise
        except BaseException:  # anything else (a bug, the process being stopped): never left refreshing
            _unmark(account_id, unconfirmed=True)
            raise
        times = timing.token_times(tokens.expires_in, presets.documented_lifetime(provider.preset))
        if not _store(account_id, tokens, times, marked.generation):
            # disconnected, reconnected or its provider changed meanwhile: what we got is nobody's
            retired.discard(provider=provider, tokens=tokens, reason="unstored_refresh", account_id=account_id)
            raise ReauthRequired("not_connected", "the account was disconnected during the refresh")
        # committed: the rotated refresh token is durable before the access token is used
        log.info("connectors: account %s refreshed", account_id)
        return Refreshed(tokens.access_token, refreshed=True, user_id=marked.user_id, refreshed_at=times.issued_at)


def refresh_account(*, account_id: int, force: bool = False) -> str:
    """Refresh under the single-flight guard (see the module docstring); returns the access token.
    Without ``force``, only when due on demand (re-checked under the lock); ``force`` is for an
    explicit, throttled user action."""
    return _refresh(account_id, None if force else timing.on_demand(), wait=True).access_token


def refresh_claimed(*, account_id: int, providers: dict[int, Provider], deferred_ok: list[int]) -> Refreshed:
    """The proactive job's refresh: the same guard and the job's rule (``timing.proactive``), but
    ``RefreshBusy`` instead of waiting when another process is refreshing the account (it is being
    refreshed: nothing for the job to do). ``providers`` caches the providers over a batch; the user
    ids of successful provider calls are appended to ``deferred_ok`` for the caller to audit in bulk
    (failures are audited at once)."""
    return _refresh(account_id, timing.proactive(), wait=False, providers=providers, deferred_ok=deferred_ok)
