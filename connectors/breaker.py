"""The provider-wide breaker: a provider that rate-limits (429), fails (5xx), times out or answers
garbage at its token endpoint is left alone by the whole tenant for a while, not account by account.

One ``ProviderBreaker`` row per OAuth app at a provider (token endpoint + client id) in the tenant's
schema, so every process of the platform (web threads, job workers) sees the same state:

- *closed*: calls go through. A 429 opens it at once, for its ``Retry-After`` (or the base cool-down);
  a ``Retry-After`` above the retry cap on any answer does the same; ``CONNECTORS_BREAKER_FAILURES``
  consecutive 5xx answers, timeouts, connection failures or unusable answers open it for the base
  cool-down, doubled at each re-opening up to ``CONNECTORS_BREAKER_MAX_OPEN_SECONDS``. Open times are
  stretched by up to a fifth at random, so the breakers of many tenants at one provider do not all
  probe it in the same second.
- *open*: every refresh of the tenant at that provider is refused at once (``BreakerOpen``,
  ``provider_backoff``, with the time left), without a call.
- *half-open*: once the open time is over, the first caller (a tool call or the job) takes the single
  probe (an atomic ``UPDATE``); everyone else is still refused until it answers: success closes the
  breaker, a failure re-opens it. A probe whose process died frees itself after ``probe_until``.

The time the breaker was open does not count toward ``CONNECTORS_REFRESH_GIVE_UP_SECONDS``: when
it closes again, the failing accounts' ``refresh_failing_since`` moves forward by that time, so an
outage does not send every account to ``needs_reauth``. The job spreads the accounts it could not
refresh meanwhile over ``CONNECTORS_BREAKER_RECOVERY_SPREAD_SECONDS`` after the re-opening
(``connectors.lifecycle``), so a provider coming back is not met by a herd.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q

from connectors import clock
from connectors.errors import ProviderUnavailable
from connectors.models import ConnectedAccount, Provider, ProviderBreaker
from observability import metrics

State = ProviderBreaker.State
FAILURE_CLASSES = ("rate_limited", "server_error", "timeout", "connection_failed", "invalid_response")
# how long one probe may take before another caller may probe instead (the retries of one refresh)
PROBE_SECONDS = 60
# the job's batch: what ``admit`` answered per breaker, so a batch reads each breaker once
_batch: ContextVar[dict[str, Admission | BreakerOpen] | None] = ContextVar("connectors_breaker_batch", default=None)


class BreakerOpen(ProviderUnavailable):
    """The provider's breaker is open in this tenant: no call was made."""

    def __init__(self, retry_after: float, until: datetime) -> None:
        super().__init__("provider_backoff", "the provider is backing off; try again later", retry_after=retry_after)
        self.until = until


@dataclass
class Admission:
    key: str
    probe: bool = False
    dirty: bool = False  # the row had failures or was not closed: a success writes it back


def breaker_key(provider: Provider) -> str:
    return hashlib.sha256(f"{provider.token_endpoint}\n{provider.client_id}".encode()).hexdigest()


def failure_class(exc: ProviderUnavailable) -> str:
    if exc.code == "rate_limited":
        return "rate_limited"
    if exc.code == "invalid_response":
        return "invalid_response"
    if exc.code == "timeout":
        return "timeout"
    if exc.code in ("connection_failed", "unresolvable"):
        return "connection_failed"
    return "server_error"


def _gauge(row: ProviderBreaker | None, provider: Provider) -> None:
    metrics.breaker_state(connection.schema_name, provider.key, row.state if row else State.CLOSED)


@contextmanager
def for_batch() -> Iterator[None]:
    """The job's batch: each breaker is read once (its later failures update what was read); a
    breaker another process opens meanwhile is seen by the next batch."""
    token = _batch.set({})
    try:
        yield
    finally:
        _batch.reset(token)


def admit(provider: Provider, *, now: datetime | None = None) -> Admission:
    """May this process call the provider's token endpoint now? ``BreakerOpen`` if not."""
    key = breaker_key(provider)
    cache = _batch.get()
    if cache is not None and key in cache:
        found = cache[key]
        if isinstance(found, BreakerOpen):
            raise found
        return found
    try:
        admission = _admit(provider, key, now or clock.now())
    except BreakerOpen as refused:
        if cache is not None:
            cache[key] = refused
        raise
    if cache is not None:
        cache[key] = admission
    return admission


def _admit(provider: Provider, key: str, now: datetime) -> Admission:
    row = (
        ProviderBreaker.objects.filter(key=key)
        .only("state", "open_until", "probe_until", "consecutive_failures")
        .first()
    )
    if row is None or (row.state == State.CLOSED):
        return Admission(key, dirty=row is not None and row.consecutive_failures > 0)
    if row.state == State.OPEN and row.open_until and row.open_until > now:
        raise BreakerOpen((row.open_until - now).total_seconds(), row.open_until)
    if row.state == State.HALF_OPEN and row.probe_until and row.probe_until > now:
        raise BreakerOpen((row.probe_until - now).total_seconds(), row.probe_until)
    return _take_probe(provider, key, now)


def _take_probe(provider: Provider, key: str, now: datetime) -> Admission:
    """Open time over (or the last probe's time): the first caller takes the probe, atomically."""
    with transaction.atomic():
        row = ProviderBreaker.objects.select_for_update().filter(key=key).first()
        if row is None or row.state == State.CLOSED:
            return Admission(key, dirty=row is not None)
        busy_until = row.open_until if row.state == State.OPEN else row.probe_until
        if busy_until and busy_until > now:
            raise BreakerOpen((busy_until - now).total_seconds(), busy_until)
        if row.state == State.OPEN and row.opened_at is not None:
            _discount_open_time(provider, now - row.opened_at)
        row.state, row.probe_until = State.HALF_OPEN, now + timedelta(seconds=PROBE_SECONDS)
        row.save(update_fields=["state", "probe_until", "updated_at"])
    _gauge(row, provider)
    return Admission(key, probe=True, dirty=True)


def _discount_open_time(provider: Provider, open_for: timedelta) -> None:
    """Time with the breaker open does not count toward the give-up time of failing accounts."""
    same_app = Provider.objects.filter(token_endpoint=provider.token_endpoint, client_id=provider.client_id)
    ConnectedAccount.objects.filter(provider__in=same_app, refresh_failing_since__isnull=False).update(
        refresh_failing_since=F("refresh_failing_since") + open_for
    )


def succeeded(provider: Provider, admission: Admission) -> None:
    if not admission.dirty:
        return  # the usual case: closed, no failures, nothing to write
    admission.dirty = admission.probe = False
    ProviderBreaker.objects.filter(key=admission.key).update(
        state=State.CLOSED, consecutive_failures=0, open_streak=0, probe_until=None, open_until=None,
        updated_at=clock.now(),
    )  # fmt: skip
    metrics.breaker_state(connection.schema_name, provider.key, State.CLOSED)


def _open_seconds(row: ProviderBreaker, retry_after: float | None) -> float:
    if retry_after is not None and retry_after > 0:
        return retry_after * random.uniform(1.0, 1.2)  # noqa: S311 (jitter): never earlier than asked
    base = settings.CONNECTORS_BREAKER_OPEN_SECONDS * 2 ** max(0, row.open_streak - 1)
    return min(settings.CONNECTORS_BREAKER_MAX_OPEN_SECONDS, base) * random.uniform(1.0, 1.2)  # noqa: S311


def failed(provider: Provider, admission: Admission, kind: str, retry_after: float | None = None) -> bool:
    """Record a failure of class ``kind`` (``FAILURE_CLASSES``); True when the breaker is (now) open,
    so the caller stops retrying."""
    now = clock.now()
    metrics.provider_failure(connection.schema_name, provider.key, kind)
    admission.dirty = True
    for _ in range(2):  # a concurrent first failure may create the row under us: one more try
        try:
            with transaction.atomic():
                defaults = {"provider_key": provider.key, "token_endpoint": provider.token_endpoint}
                row, _ = ProviderBreaker.objects.select_for_update().get_or_create(key=admission.key, defaults=defaults)
                opened = _apply_failure(row, now, kind, retry_after)
            break
        except IntegrityError:
            continue
    else:
        return False
    _gauge(row, provider)
    cache = _batch.get()
    if opened and cache is not None and row.open_until is not None:
        cache[admission.key] = BreakerOpen(max(0.0, (row.open_until - now).total_seconds()), row.open_until)
    return opened


def _apply_failure(row: ProviderBreaker, now: datetime, kind: str, retry_after: float | None) -> bool:
    row.consecutive_failures += 1
    row.failures = {**row.failures, kind: int(row.failures.get(kind, 0)) + 1}
    row.last_failure_class, row.last_failure_at = kind, now
    if row.state == State.OPEN and row.open_until and row.open_until > now:
        pass  # already open (another process's failure): keep its time
    elif (
        row.state == State.HALF_OPEN
        or kind == "rate_limited"
        or (retry_after is not None and retry_after > settings.CONNECTORS_RETRY_MAX_DELAY_SECONDS)
        or row.consecutive_failures >= settings.CONNECTORS_BREAKER_FAILURES
    ):
        row.open_streak += 1
        row.times_opened += 1
        row.state, row.opened_at, row.probe_until = State.OPEN, now, None
        row.open_until = now + timedelta(seconds=_open_seconds(row, retry_after))
    row.save()
    return row.state == State.OPEN


def cooling_provider_ids(*, now: datetime | None = None) -> list[int]:
    """Providers whose breaker refuses calls right now (open, or a probe in flight): the job does not
    claim their accounts. Once the open time is over they are claimed again and the first one probes."""
    now = now or clock.now()
    rows = ProviderBreaker.objects.filter(
        Q(state=State.OPEN, open_until__gt=now) | Q(state=State.HALF_OPEN, probe_until__gt=now)
    ).values_list("key", flat=True)
    keys = set(rows)
    if not keys:
        return []
    return [p.pk for p in Provider.objects.only("pk", "token_endpoint", "client_id") if breaker_key(p) in keys]


def recovery_time(until: datetime) -> datetime:
    """When an account the breaker kept from refreshing is tried again: after the open time, spread."""
    spread = settings.CONNECTORS_BREAKER_RECOVERY_SPREAD_SECONDS
    return max(until, clock.now()) + timedelta(seconds=random.uniform(0, spread))  # noqa: S311 (jitter)
