"""The connectors' panel on the auth health page (``observability.health``): connected accounts
that need the user to connect again, by provider and reason."""

from __future__ import annotations

from django.db.models import Count

from connectors.models import ConnectedAccount
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
