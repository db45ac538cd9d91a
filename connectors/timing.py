"""When an upstream access token is refreshed: from its own lifetime, never more than once per half
lifetime (unless the provider refused it, or a user asked, throttled).

Each account stores when its access token was issued (``token_issued_at``) and how long it lives
(``token_lifetime_seconds``, from ``expires_in``; ``expires_at`` = issued + lifetime). A token is
*due* when its remaining life is at most a *lead*:

- on demand (a tool needs the token): lead = min(``CONNECTORS_REFRESH_MARGIN_SECONDS``, lifetime / 4);
- proactive (the periodic job): lead = min(``CONNECTORS_REFRESH_WINDOW_SECONDS``, lifetime / 2).

Both leads are at most half the lifetime, so a token younger than half its life is never due. A 90 s
token is due for the job after 45 s (not at once, as a 600 s window alone would say) and for a tool
after 67.5 s; a one-hour token is due for the job after 50 minutes. A token without ``expires_in``
(``expires_at`` empty) is never due: it is refreshed only when the provider refuses it (``force``),
unless the provider's preset documents a lifetime. A row whose lifetime is unknown (stored before the
lifetime was) falls back to the cap alone, as before; its next refresh records the lifetime.

The rule exists three times, kept in agreement by ``tests/connectors/test_refresh_timing.py``:
``is_due`` (Python, the ORM paths of ``connectors.tokens``), ``due_filter`` (the job's claim query)
and ``DUE_SQL`` (the hand-written ``_MARK`` statement of ``connectors.tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, FloatField, Q, Value
from django.db.models.functions import Cast, Coalesce, Least

from connectors import clock

# expires_in is clamped into this range: a provider answering 0, a negative number or 10**30 gets a
# token that is refreshed at a sane pace instead of on every call, or an overflow
MIN_LIFETIME_SECONDS = 10
MAX_LIFETIME_SECONDS = 400 * 86400
ON_DEMAND_SHARE = 0.25
PROACTIVE_SHARE = 0.5


@dataclass(frozen=True)
class Rule:
    cap_seconds: float
    share: float

    def lead(self, lifetime: int | None) -> float:
        return float(self.cap_seconds) if lifetime is None else min(float(self.cap_seconds), lifetime * self.share)


def on_demand() -> Rule:
    return Rule(settings.CONNECTORS_REFRESH_MARGIN_SECONDS, ON_DEMAND_SHARE)


def proactive() -> Rule:
    return Rule(settings.CONNECTORS_REFRESH_WINDOW_SECONDS, PROACTIVE_SHARE)


def is_due(rule: Rule, *, expires_at: datetime | None, lifetime: int | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now + timedelta(seconds=rule.lead(lifetime))


def due_filter(rule: Rule, now: datetime) -> Q:
    """``is_due`` as a queryset filter on ``ConnectedAccount``. The first term (the cap alone) is the
    index-friendly superset; the second is the rule."""
    cap = float(rule.cap_seconds)
    lead = Least(
        Value(cap, output_field=FloatField()),
        Coalesce(
            Cast(F("token_lifetime_seconds"), FloatField()) * Value(rule.share, output_field=FloatField()),
            Value(cap, output_field=FloatField()),
        ),
    )
    lead_interval = ExpressionWrapper(lead * Value(timedelta(seconds=1)), output_field=DurationField())
    deadline = ExpressionWrapper(Value(now, output_field=DateTimeField()) + lead_interval, output_field=DateTimeField())
    return Q(expires_at__lte=now + timedelta(seconds=cap)) & Q(expires_at__lte=deadline)


# ``is_due`` in SQL, for an account row aliased ``a``; parameters ``now``, ``cap``, ``share``
DUE_SQL = (
    "a.expires_at <= %(now)s + make_interval(secs => LEAST(%(cap)s::float8, "
    "COALESCE(a.token_lifetime_seconds * %(share)s::float8, %(cap)s::float8)))"
)


def due_params(rule: Rule, now: datetime) -> dict[str, object]:
    return {"now": now, "cap": float(rule.cap_seconds), "share": rule.share}


def clamp_lifetime(seconds: int) -> int:
    return max(MIN_LIFETIME_SECONDS, min(MAX_LIFETIME_SECONDS, seconds))


@dataclass(frozen=True)
class TokenTimes:
    issued_at: datetime
    lifetime: int | None  # None: the token does not say when it expires
    expires_at: datetime | None


def token_times(
    expires_in: int | None, documented_lifetime: int | None = None, now: datetime | None = None
) -> TokenTimes:
    """Issue time, lifetime and expiry of a token answered now with ``expires_in`` (already
    validated); a preset's documented lifetime stands in when the answer has none."""
    now = now or clock.now()
    lifetime = expires_in if expires_in is not None else documented_lifetime
    if lifetime is None:
        return TokenTimes(now, None, None)
    lifetime = clamp_lifetime(lifetime)
    return TokenTimes(now, lifetime, now + timedelta(seconds=lifetime))
