"""Connector refresh metrics and audit events against the real provider: the
proactive job's headroom (how close to expiry it refreshed), refresh outcomes with latency (ok,
unavailable, needs_reauth) and one ``connector_refresh`` audit event per provider call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import tokens
from connectors.errors import ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount, Credential
from connectors.tasks import refresh_expiring_in_tenant
from observability import metrics
from observability.models import AuthEvent
from tests.observability_helpers import samples, value
from tests.support.connectors import connected_account

pytestmark = pytest.mark.timeout(120)


def _snapshot():
    return samples(metrics.exposition().decode())


def _events(account: ConnectedAccount) -> list[tuple[str, str]]:
    with schema_context("acme"):
        return list(
            AuthEvent.objects.filter(event="connector_refresh", user_id=account.user_id)
            .order_by("id").values_list("outcome", "tenant")
        )


def test_refresh_outcomes_latency_and_proactive_headroom(live, oidc, settings):
    settings.CONNECTORS_REFRESH_ATTEMPTS = 1
    _, account = connected_account(live, oidc)
    with schema_context("acme"):
        AuthEvent.objects.filter(event="connector_refresh", user_id=account.user_id).delete()
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() + timedelta(seconds=120))
    before = _snapshot()
    assert refresh_expiring_in_tenant("acme")["refreshed"] >= 1
    after = _snapshot()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("platform_connector_refresh_total", tenant="acme", outcome="ok") >= 1
    assert delta("platform_connector_refresh_seconds_count", tenant="acme", outcome="ok") >= 1
    assert delta("platform_connector_refresh_seconds_sum", tenant="acme", outcome="ok") > 0
    headroom = "platform_connector_proactive_refresh_headroom_seconds"
    assert delta(f"{headroom}_count", tenant="acme") >= 1
    assert delta(f"{headroom}_bucket", tenant="acme", le="120.0") >= 1  # ~120 s were left
    assert delta(f"{headroom}_bucket", tenant="acme", le="60.0") < delta(f"{headroom}_count", tenant="acme")
    assert ("ok", "acme") in _events(account)

    before = _snapshot()
    oidc.fail_next(1, status=503)
    with schema_context("acme"), pytest.raises(ProviderUnavailable):
        tokens.refresh_account(account_id=account.pk, force=True)
    after = _snapshot()
    assert delta("platform_connector_refresh_total", tenant="acme", outcome="unavailable") == 1

    with schema_context("acme"):
        stale = Credential.objects.get(account=account).refresh_token
    assert oidc.refresh_directly(stale).status_code == 200  # rotated behind the platform's back
    before = _snapshot()
    with schema_context("acme"), pytest.raises(ReauthRequired):
        tokens.refresh_account(account_id=account.pk, force=True)
    after = _snapshot()
    assert delta("platform_connector_refresh_total", tenant="acme", outcome="needs_reauth") == 1
    outcomes = [outcome for outcome, _ in _events(account)]
    assert outcomes[-2:] == ["unavailable", "needs_reauth"], outcomes
