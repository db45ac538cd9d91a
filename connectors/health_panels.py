"""The connectors' panels on the auth health page (``observability.health``): connected accounts
that need the user to connect again, by provider and reason; each provider's failures and breaker."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count

from connectors import clock
from connectors.models import ConnectedAccount, ProviderBreaker
from observability.health import Panel, health_panel


@health_panel
def accounts_needing_reauth() -> Panel:
    rows = (
        ConnectedAccount.objects.filter(status=ConnectedAccount.Status.NEEDS_REAUTH)
        .values("provider__key", "status_reason")
        .annotate(n=Count("id"))
        .order_by("provider__key", "status_reason")
    )
    by_provider: dict[str, int] = {}
    for row in rows:
        by_provider[row["provider__key"]] = by_provider.get(row["provider__key"], 0) + row["n"]
    return Panel(
        title="Connected accounts needing re-authorization",
        bars=sorted(by_provider.items()),
        empty_text="No connected account needs re-authorization.",
        help_text="The user must connect the account again (Connections page); tools answer CONNECTOR_REAUTH_REQUIRED.",
        rows=[(r["provider__key"], r["status_reason"] or "-", str(r["n"])) for r in rows],
        row_headers=("provider", "reason", "accounts"),
    )


@health_panel
def provider_health() -> Panel:
    """Per provider app (token endpoint + client id): the breaker's state and the failures that
    moved it, with the refreshes of the last hour (``connectors.breaker``)."""
    now = clock.now()
    refreshed = dict(
        ConnectedAccount.objects.filter(last_refreshed_at__gte=now - timedelta(hours=1))
        .values("provider__key")
        .annotate(n=Count("id"))
        .values_list("provider__key", "n")
    )
    breakers = list(ProviderBreaker.objects.order_by("provider_key"))
    rows = []
    for row in breakers:
        state = row.state
        if row.state == ProviderBreaker.State.OPEN and row.open_until and row.open_until <= now:
            state = "open (probe due)"
        until = row.open_until.strftime("%Y-%m-%d %H:%M:%S") if row.open_until and row.open_until > now else "-"
        failures = ", ".join(f"{k} {v}" for k, v in sorted(row.failures.items())) or "-"
        recent = str(refreshed.get(row.provider_key, 0))
        rows.append((row.provider_key, state, until, failures, str(row.times_opened), recent))
    return Panel(
        title="Upstream providers: failures and breaker",
        bars=[(row.provider_key, sum(int(v) for v in row.failures.values())) for row in breakers if row.failures],
        empty_text="No provider has failed.",
        help_text=(
            "Failures at each provider's token endpoint (429, 5xx, timeouts, unusable answers). An open breaker "
            "keeps the whole workspace from calling that provider until it has cooled down; tools answer "
            "CONNECTOR_UNAVAILABLE meanwhile, with the current token while it lasts."
        ),
        rows=rows,
        row_headers=("provider", "breaker", "open until", "failures by class", "times opened", "refreshed (1 h)"),
    )
