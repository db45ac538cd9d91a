"""Reads of the audit trail for the auth health page."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from observability.models import AuthEvent

REFRESH_EVENTS = ("token.refresh_token", "refresh_reuse", "connector_refresh")


def hours_ending(now: datetime, hours: int = 24) -> list[datetime]:
    last = now.replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=hours - 1 - i) for i in range(hours)]


def _hourly(queryset, now: datetime, series_of) -> tuple[list[datetime], dict[str, list[int]]]:
    hours = hours_ending(now)
    index = {hour: i for i, hour in enumerate(hours)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(hours))
    rows = (
        queryset.filter(created_at__gte=hours[0])
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "event", "auth_class", "outcome")
        .annotate(n=Sum("count"))  # an aggregated row stands for ``count`` events
    )
    for row in rows:
        position = index.get(row["hour"])
        if position is not None:
            series[series_of(row)][position] += row["n"]
    return hours, dict(sorted(series.items()))


def events_by_class(now: datetime | None = None) -> tuple[list[datetime], dict[str, list[int]]]:
    """Auth events of the last 24 hours per hour, by class (the challenge class, else the event)."""
    return _hourly(AuthEvent.objects.all(), now or timezone.now(), lambda r: r["auth_class"] or r["event"])


def refresh_outcomes(now: datetime | None = None) -> tuple[list[datetime], dict[str, list[int]]]:
    """Platform refresh-token answers, reuse detections and upstream refreshes of the last 24 hours."""
    names = {"token.refresh_token": "platform refresh", "refresh_reuse": "platform refresh",
             "connector_refresh": "connector refresh"}
    return _hourly(
        AuthEvent.objects.filter(event__in=REFRESH_EVENTS),
        now or timezone.now(),
        lambda r: f"{names[r['event']]}: {'reuse' if r['event'] == 'refresh_reuse' else r['outcome']}",
    )


def unattributed_totals(now: datetime | None = None) -> list[tuple[str, int]]:
    """Failures before any client was known in the last 24 hours (aggregated rows), by event and
    class or outcome: what a flood of made-up tokens or client ids amounts to."""
    since = (now or timezone.now()) - timedelta(hours=24)
    rows = (
        AuthEvent.objects.filter(aggregated=True, created_at__gte=since)
        .values("event", "auth_class", "outcome")
        .annotate(n=Sum("count"))
        .order_by("-n")
    )
    return [(f"{row['event']} {row['auth_class'] or row['outcome']}", row["n"]) for row in rows]


def login_limit_alerts(now: datetime | None = None) -> list[tuple[str, int]]:
    """Login limits reached in the last 24 hours (``login_limit`` events): addresses locked and
    accounts whose logins were throttled."""
    since = (now or timezone.now()) - timedelta(hours=24)
    rows = (
        AuthEvent.objects.filter(event="login_limit", created_at__gte=since)
        .values("outcome")
        .annotate(n=Sum("count"))
        .order_by("outcome")
    )
    names = {"address": "addresses locked", "account": "accounts throttled"}
    return [(names.get(row["outcome"], row["outcome"]), row["n"]) for row in rows]
