"""Services of the connectors' lifecycle jobs (current tenant schema): proactive refresh with
claimed batches and backoff, the upstream revocation sweep, key rotation. Tasks stay thin.

Exactly once across workers: accounts are *claimed* in batches (``SELECT ... FOR UPDATE SKIP
LOCKED``, then a committed lease in ``next_refresh_at``), so two workers or two runs never take the
same account; the refresh itself goes through ``connectors.tokens``' single-flight guard
(``refresh_claimed``), which re-checks under the lock that the account is due. A worker killed
mid-batch leaves its leases to expire; the next run picks those accounts up.

Due means the token's own rule (``connectors.timing.proactive``): remaining life under
min(``CONNECTORS_REFRESH_WINDOW_SECONDS``, half the lifetime). One run refreshes an account at most
once: an account refreshed since the run started is not claimed again by it (nor by its helper
tasks, which get the run's start), however short its tokens live. Accounts of a provider whose
breaker is open (``connectors.breaker``) are not claimed; an account the breaker refused mid-batch
is deferred past the open time, spread at random."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When

from connectors import backoff, breaker, clock, retired, slots, timing
from connectors.crypto import reencrypt_current_schema
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount, Credential, Provider
from connectors.tokens import UNCONFIRMED, RefreshBusy, refresh_claimed
from observability import audit, metrics
from tenants.models import Membership

log = logging.getLogger(__name__)

Status = ConnectedAccount.Status
Counts = dict[str, int]
REFRESH_OUTCOMES = (
    "refreshed", "already_fresh", "busy", "deferred", "needs_reauth", "backoff", "gave_up", "failed",
)  # fmt: skip


def _active_member() -> Exists:
    return Exists(
        Membership.objects.active().filter(user_id=OuterRef("user_id"), tenant_id=connection.tenant.pk)
    )


def due_accounts(
    *, rule: timing.Rule | None = None, now: datetime | None = None, not_refreshed_since: datetime | None = None
) -> QuerySet[ConnectedAccount]:
    """Accounts the proactive refresh should renew now: usable, refreshable, due by the token's own
    rule, not leased or backing off, held by an active member of the tenant, at a provider whose
    breaker lets calls through, and (``not_refreshed_since``: the run's start) not refreshed by this
    run already."""
    now = now or clock.now()
    accounts = (
        ConnectedAccount.objects.filter(
            status__in=(Status.ACTIVE, Status.REFRESHING),
            revocation_pending=False,
            credential__refresh_token__isnull=False,
        )
        .filter(timing.due_filter(rule or timing.proactive(), now))
        .filter(Q(next_refresh_at__isnull=True) | Q(next_refresh_at__lte=now))
        .filter(_active_member())
    )
    if not_refreshed_since is not None:
        accounts = accounts.filter(Q(last_refreshed_at__isnull=True) | Q(last_refreshed_at__lt=not_refreshed_since))
    cooling = breaker.cooling_provider_ids(now=now)
    if cooling:
        accounts = accounts.exclude(provider_id__in=cooling)
    return accounts


def claim_batch(
    *, size: int, rule: timing.Rule | None = None, not_refreshed_since: datetime | None = None
) -> list[tuple[int, datetime | None, int]]:
    """Lease up to ``size`` due accounts to this worker (committed before any provider call).
    Returns their ids with the expiry each had when claimed (for the headroom metric) and their
    provider. Accounts whose last refresh got no answer come last: the provider may have rotated
    their refresh token already, and only a grace window there (if any) still accepts the one we
    hold, so they are not the ones to probe a provider that is still failing."""
    now = clock.now()
    unconfirmed_last = Case(
        When(status_reason=UNCONFIRMED, then=Value(1)), default=Value(0), output_field=IntegerField()
    )
    lease = now + timedelta(seconds=settings.CONNECTORS_REFRESH_LEASE_SECONDS)
    with transaction.atomic():
        claimed = list(
            due_accounts(rule=rule, now=now, not_refreshed_since=not_refreshed_since)
            .order_by(unconfirmed_last, "expires_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "expires_at", "provider_id")[:size]
        )
        if claimed:
            ConnectedAccount.objects.filter(pk__in=[pk for pk, _, _ in claimed]).update(next_refresh_at=lease)
    return claimed


def record_refresh_failure(account_id: int) -> str:
    """A transient failure: back off, or give up (``needs_reauth``) once the account has been failing
    for ``CONNECTORS_REFRESH_GIVE_UP_SECONDS`` (time with the provider's breaker open not counted:
    ``connectors.breaker``). Returns the outcome."""
    now = clock.now()
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
            account.next_refresh_at = now + backoff.refresh_retry(account.refresh_failures)
            outcome = "backoff"
        account.save()
    return outcome


def _defer(account_id: int, until: datetime) -> str:
    """The provider rate-limits, or its breaker refused the call (no failure of this account): try
    again after that, spread."""
    ConnectedAccount.objects.filter(pk=account_id).update(next_refresh_at=breaker.recovery_time(until))
    return "deferred"


def _refresh_one(account_id: int, expired_at: datetime | None, providers: dict[int, Provider], ok: list[int]) -> str:
    """Refresh one claimed account; returns the outcome counted for the run. Nothing one account
    does (a provider's garbage included) stops the batch."""
    try:
        result = refresh_claimed(account_id=account_id, providers=providers, deferred_ok=ok)
    except slots.ProviderBusy:
        return "provider_busy"
    except RefreshBusy:
        return "busy"  # its lease expires; a later run takes it
    except breaker.BreakerOpen as exc:
        return _defer(account_id, exc.until)
    except ReauthRequired:
        return "needs_reauth"
    except ProviderUnavailable as exc:
        if exc.code == "rate_limited":  # the provider's limit, not this account's failure
            return _defer(account_id, clock.now() + timedelta(seconds=exc.retry_after or 0))
        return record_refresh_failure(account_id)
    except ConnectorError:
        return "failed"
    except Exception as exc:  # a bug must not stop the batch; the account was put back to active
        log.error("connectors: refresh of account %s failed unexpectedly (%s)", account_id, type(exc).__name__)
        return "failed"
    if not result.refreshed:
        return "already_fresh"
    if expired_at is not None and result.refreshed_at is not None:  # time the old token still had (<= 0: late)
        metrics.proactive_headroom(connection.schema_name, (expired_at - result.refreshed_at).total_seconds())
    return "refreshed"


def refresh_due_accounts(
    *, batch_size: int, max_batches: int | None = None, run_started: datetime | None = None
) -> Counts:
    """Claim and refresh due accounts batch by batch until none is left. Safe to run on many workers
    at once: each account is claimed by one of them. An account another process is refreshing at
    that moment (an on-demand refresh holds its lock) is left to it: ``busy``, its lease expires.
    When no concurrency slot of a provider frees within a call deadline, the batch's accounts at
    that provider are put back at once (``busy``), for another batch to take.
    ``run_started``: the start of the run this is part of (one refresh per account and run)."""
    run_started = run_started or clock.now()
    counts: Counts = dict.fromkeys(REFRESH_OUTCOMES, 0)
    batches = 0
    while max_batches is None or batches < max_batches:
        claimed = claim_batch(size=batch_size, not_refreshed_since=run_started)
        if not claimed:
            break
        batches += 1
        providers: dict[int, Provider] = {}  # loaded once per batch
        succeeded: list[int] = []  # user ids of the provider calls that succeeded: audited in bulk
        crowded: set[int] = set()  # providers with no free slot: their accounts go back at once
        released: list[int] = []
        try:
            with slots.patient(), breaker.for_batch():
                for account_id, expired_at, provider_id in claimed:
                    outcome = "busy"
                    if provider_id not in crowded:
                        outcome = _refresh_one(account_id, expired_at, providers, succeeded)
                    if outcome == "provider_busy":
                        crowded.add(provider_id)
                        outcome = "busy"
                    if provider_id in crowded:
                        released.append(account_id)
                    counts[outcome] = counts.get(outcome, 0) + 1
        finally:  # also when the batch stops on an unexpected error
            audit.record_many(event="connector_refresh", outcome="ok", user_ids=succeeded)
            if released:  # not tried: claimable again at once (by this run too), not after the lease
                ConnectedAccount.objects.filter(pk__in=released).update(next_refresh_at=None)
    counts["batches"] = batches
    return counts


def due_count() -> int:
    return due_accounts().count()


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
            updated_at=clock.now(),
        )


def retry_revocations(*, batch_size: int = 100) -> Counts:
    """Revoke at the provider (RFC 7009) and delete the credentials of accounts pending revocation,
    claimed in batches; a failure backs off (``next_revocation_at``)."""
    counts: Counts = {"revoked": 0, "revocation_failed": 0}
    pending = ConnectedAccount.objects.filter(revocation_pending=True)
    while True:
        batch = backoff.claim_due(pending, field="next_revocation_at", now=clock.now(), size=batch_size)
        if not batch:
            return counts
        for account in ConnectedAccount.objects.select_related("provider").filter(pk__in=batch):
            if retired.revoke_account(account):
                counts["revoked"] += 1
                ConnectedAccount.objects.filter(pk=account.pk).update(revocation_attempts=0, next_revocation_at=None)
                continue
            counts["revocation_failed"] += 1
            attempts = account.revocation_attempts + 1
            ConnectedAccount.objects.filter(pk=account.pk).update(
                revocation_attempts=attempts, next_revocation_at=clock.now() + backoff.revocation_retry(attempts)
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
