"""Services of the connectors' lifecycle jobs (current tenant schema): proactive refresh with
claimed batches and backoff, the upstream revocation sweep, key rotation. Tasks stay thin.

Exactly once across workers: accounts are *claimed* in batches (``SELECT ... FOR UPDATE SKIP
LOCKED``, then a committed lease in ``next_refresh_at``), so two workers or two runs never take the
same account; the refresh itself goes through ``connectors.tokens``' single-flight guard
(``refresh_claimed``), which re-checks the expiry under the lock. A worker killed mid-batch leaves
its leases to expire; the next run picks those accounts up."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from connectors.crypto import reencrypt_current_schema
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount, Credential, Provider
from connectors.services import _revoke_and_forget
from connectors.tokens import RefreshBusy, refresh_claimed
from observability import audit, metrics
from tenants.models import Membership

Status = ConnectedAccount.Status
Counts = dict[str, int]
REFRESH_OUTCOMES = ("refreshed", "already_fresh", "busy", "needs_reauth", "backoff", "gave_up", "failed")


def _active_member() -> Exists:
    return Exists(
        Membership.objects.filter(user_id=OuterRef("user_id"), tenant_id=connection.tenant.pk, is_active=True)
    )


def due_accounts(*, within_seconds: int, now=None) -> QuerySet[ConnectedAccount]:
    """Accounts the proactive refresh should renew now: usable, refreshable, expiring within the
    window, not leased or backing off, and held by an active member of the tenant."""
    now = now or timezone.now()
    return (
        ConnectedAccount.objects.filter(
            status__in=(Status.ACTIVE, Status.REFRESHING),
            revocation_pending=False,
            expires_at__lte=now + timedelta(seconds=within_seconds),
            credential__refresh_token__isnull=False,
        )
        .filter(Q(next_refresh_at__isnull=True) | Q(next_refresh_at__lte=now))
        .filter(_active_member())
    )


def claim_batch(*, within_seconds: int, size: int) -> list[tuple[int, datetime | None]]:
    """Lease up to ``size`` due accounts to this worker (committed before any provider call).
    Returns their ids with the expiry each had when claimed (for the headroom metric)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.CONNECTORS_REFRESH_LEASE_SECONDS)
    with transaction.atomic():
        claimed = list(
            due_accounts(within_seconds=within_seconds, now=now)
            .order_by("expires_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "expires_at")[:size]
        )
        if claimed:
            ConnectedAccount.objects.filter(pk__in=[pk for pk, _ in claimed]).update(next_refresh_at=lease)
    return claimed


def backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """Exponential backoff with jitter (half fixed, half random), capped."""
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (jitter, not security)


def record_refresh_failure(account_id: int) -> str:
    """A transient failure: back off, or give up (``needs_reauth``) once the account has been failing
    for ``CONNECTORS_REFRESH_GIVE_UP_SECONDS``. Returns the outcome."""
    now = timezone.now()
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update().filter(pk=account_id).first()
        if account is None:
            return "gone"
        account.refresh_failures += 1
        account.refresh_failing_since = account.refresh_failing_since or now
        failing_for = (now - account.refresh_failing_since).total_seconds()
        if failing_for >= settings.CONNECTORS_REFRESH_GIVE_UP_SECONDS:
            account.status, account.status_reason = Status.NEEDS_REAUTH, "refresh_failing"
            account.refreshing_since = account.next_refresh_at = None
            outcome = "gave_up"
        else:
            delay = backoff_delay(
                account.refresh_failures,
                base=settings.CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS,
                cap=settings.CONNECTORS_REFRESH_BACKOFF_MAX_SECONDS,
            )
            account.next_refresh_at = now + timedelta(seconds=delay)
            outcome = "backoff"
        account.save()
    return outcome


def _refresh_one(
    account_id: int, expired_at: datetime | None, within_seconds: int, providers: dict[int, Provider], ok: list[int]
) -> str:
    """Refresh one claimed account; returns the outcome counted for the run."""
    try:
        result = refresh_claimed(
            account_id=account_id, margin_seconds=within_seconds, providers=providers, deferred_ok=ok
        )
    except RefreshBusy:
        return "busy"
    except ReauthRequired:
        return "needs_reauth"
    except ProviderUnavailable:
        return record_refresh_failure(account_id)
    except ConnectorError:
        return "failed"
    if not result.refreshed:
        return "already_fresh"
    if expired_at is not None and result.refreshed_at is not None:  # time the old token still had (<= 0: late)
        metrics.proactive_headroom(connection.schema_name, (expired_at - result.refreshed_at).total_seconds())
    return "refreshed"


def refresh_due_accounts(*, within_seconds: int, batch_size: int, max_batches: int | None = None) -> Counts:
    """Claim and refresh due accounts batch by batch until none is left. Safe to run on many workers
    at once: each account is claimed by one of them. An account another process is refreshing at
    that moment (an on-demand refresh holds its lock) is left to it: ``busy``, its lease expires."""
    counts: Counts = dict.fromkeys(REFRESH_OUTCOMES, 0)
    batches = 0
    while max_batches is None or batches < max_batches:
        claimed = claim_batch(within_seconds=within_seconds, size=batch_size)
        if not claimed:
            break
        batches += 1
        providers: dict[int, Provider] = {}  # loaded once per batch
        succeeded: list[int] = []  # user ids of the provider calls that succeeded: audited in bulk
        try:
            for account_id, expired_at in claimed:
                outcome = _refresh_one(account_id, expired_at, within_seconds, providers, succeeded)
                counts[outcome] = counts.get(outcome, 0) + 1
        finally:  # also when the batch stops on an unexpected error
            audit.record_many(event="connector_refresh", outcome="ok", user_ids=succeeded)
    counts["batches"] = batches
    return counts


def due_count(*, within_seconds: int) -> int:
    return due_accounts(within_seconds=within_seconds).count()


# --- the upstream sweep ------------------------------------------------------------------------------


def end_departed_accounts(*, tenant_active: bool) -> int:
    """Mark for revocation the accounts of users who are no longer active members (every account,
    if the tenant was deactivated). The revocation itself is ``retry_revocations``'s."""
    accounts = ConnectedAccount.objects.filter(revocation_pending=False).filter(
        Q(credential__isnull=False) | ~Q(status=Status.REVOKED)
    )
    if tenant_active:
        accounts = accounts.filter(~_active_member())
    reason = "membership_ended" if tenant_active else "tenant_deactivated"
    with transaction.atomic():
        ids = list(accounts.select_for_update(of=("self",)).values_list("pk", flat=True))
        # a new credential generation: a refresh in flight cannot store into a revoked account
        Credential.objects.filter(account_id__in=ids).update(generation=F("generation") + 1)
        return ConnectedAccount.objects.filter(pk__in=ids).update(
            status=Status.REVOKED,
            status_reason=reason,
            refreshing_since=None,
            revocation_pending=True,
            next_revocation_at=None,
            credential_generation=F("credential_generation") + 1,
            updated_at=timezone.now(),
        )


def retry_revocations(*, batch_size: int = 100) -> Counts:
    """Revoke at the provider (RFC 7009) and delete the credentials of accounts pending revocation,
    claimed in batches; a failure backs off (``next_revocation_at``)."""
    counts: Counts = {"revoked": 0, "revocation_failed": 0}
    while True:
        now = timezone.now()
        with transaction.atomic():
            batch = list(
                ConnectedAccount.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(revocation_pending=True)
                .filter(Q(next_revocation_at__isnull=True) | Q(next_revocation_at__lte=now))
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            lease = now + timedelta(seconds=settings.CONNECTORS_REFRESH_LEASE_SECONDS)
            ConnectedAccount.objects.filter(pk__in=batch).update(next_revocation_at=lease)
        if not batch:
            return counts
        for account in ConnectedAccount.objects.select_related("provider").filter(pk__in=batch):
            if _revoke_and_forget(account):
                counts["revoked"] += 1
                ConnectedAccount.objects.filter(pk=account.pk).update(revocation_attempts=0, next_revocation_at=None)
                continue
            counts["revocation_failed"] += 1
            attempts = account.revocation_attempts + 1
            delay = backoff_delay(
                attempts,
                base=settings.CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS,
                cap=settings.CONNECTORS_REVOCATION_BACKOFF_MAX_SECONDS,
            )
            ConnectedAccount.objects.filter(pk=account.pk).update(
                revocation_attempts=attempts, next_revocation_at=timezone.now() + timedelta(seconds=delay)
            )


def sweep_upstream(*, tenant_active: bool) -> Counts:
    ended = end_departed_accounts(tenant_active=tenant_active)
    return {"ended": ended, **retry_revocations()}


def reencrypt() -> Counts:
    report = reencrypt_current_schema()
    return {
        "examined": report.examined,
        "rotated": report.rotated,
        "already_current": report.already_current,
        "changed_meanwhile": report.changed_meanwhile,
    }
