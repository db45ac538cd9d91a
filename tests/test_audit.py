"""The audit trail's switches: ``AUDIT_ENABLED`` off records nothing; the public
schema has no trail; successful tool calls are audited only when sampled (``AUDIT_TOOL_CALL_SAMPLE_RATE``)."""

from __future__ import annotations

import httpx
import pytest
from django_tenants.utils import schema_context

from observability import audit
from observability.models import AuthEvent
from probe.mcp_wire import modern_message
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, signed_in


@pytest.mark.django_db
def test_audit_off_records_nothing(settings):
    with schema_context("acme"):
        settings.AUDIT_ENABLED = False
        audit.record(event="switch-probe", auth_class="INVALID_TOKEN", outcome="http")
        assert not AuthEvent.objects.filter(event="switch-probe").exists()
        settings.AUDIT_ENABLED = True
        audit.record(event="switch-probe", auth_class="INVALID_TOKEN", outcome="http", client_id="c" * 300)
        row = AuthEvent.objects.get(event="switch-probe")
        assert row.tenant == "acme" and row.client_id == "c" * 255 and row.source_address is None


@pytest.mark.django_db
def test_the_public_schema_has_no_trail():
    with schema_context("acme"):
        before = AuthEvent.objects.count()
    with schema_context("public"):  # the connection keeps whatever schema the previous test left
        audit.record(event="public-probe", outcome="x")  # no table there: a no-op, not an error
    with schema_context("acme"):
        assert AuthEvent.objects.count() == before
        assert not AuthEvent.objects.filter(event="public-probe").exists()


@pytest.mark.parametrize("rate, audited", [(0.0, 0), (1.0, 1)])
def test_successful_tool_calls_are_audited_only_when_sampled(live, settings, rate, audited):
    settings.AUDIT_TOOL_CALL_SAMPLE_RATE = rate
    acme = live.tenant("acme")
    client, browser = signed_in(acme, "member@acme.test")
    token = obtain_tokens(browser, client, scope="crm.read")["access_token"]
    answer = call(acme.mcp, token, "crm_search_contacts", {"query": "a"})
    assert answer.status_code == 200 and answer.json()["result"]["isError"] is False
    with schema_context("acme"):
        rows = list(AuthEvent.objects.filter(client_id=client.client_id, event="tool_call"))
    assert len(rows) == audited
    if audited:
        assert rows[0].outcome == "ok" and rows[0].tool == "crm_search_contacts" and rows[0].user_id


def test_a_decision_outside_a_transaction_is_one_statement_committed_without_a_wal_wait(live, rf):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    request = rf.get("/t/acme/mcp", REMOTE_ADDR="192.0.2.7")
    with schema_context("acme"):
        assert not connection.in_atomic_block
        AuthEvent.objects.filter(event="async-probe").delete()  # also puts the connection in the schema
        with CaptureQueriesContext(connection) as queries:
            audit.record(event="async-probe", auth_class="INVALID_TOKEN", outcome="http", user_id=7, request=request)
        assert len(queries) == 1  # no BEGIN / SET LOCAL / COMMIT round trips
        with connection.cursor() as cursor:  # the setting was local to that statement's transaction
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
        row = AuthEvent.objects.get(event="async-probe")
        row.delete()
    assert (row.tenant, row.auth_class, row.outcome, row.user_id) == ("acme", "INVALID_TOKEN", "http", 7)
    assert row.source_address == "192.0.2.7" and row.created_at is not None and len(row.request_id) == 32


def test_a_batch_outside_a_transaction_is_one_statement(live):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with schema_context("acme"):
        AuthEvent.objects.filter(event="batch-probe").delete()
        with CaptureQueriesContext(connection) as queries:
            audit.record_many(event="batch-probe", outcome="ok", user_ids=[1, None, 3])
        assert len(queries) == 1
        rows = list(AuthEvent.objects.filter(event="batch-probe").order_by("id"))
        AuthEvent.objects.filter(event="batch-probe").delete()
    assert [(row.tenant, row.outcome, row.user_id, row.source_address) for row in rows] == [
        ("acme", "ok", 1, None),
        ("acme", "ok", None, None),
        ("acme", "ok", 3, None),
    ]


@pytest.mark.timeout(300)
def test_a_flood_of_made_up_tokens_is_counted_not_stored_row_by_row(live):
    """2,000 MCP requests with made-up bearer tokens (and 150 without a usable one): every one counted
    in metrics; in the trail a few aggregated rows whose counts add up,
    while a known client's failures are still one row each, with its client id."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from tests.observability_helpers import samples, scrape, value

    acme = live.tenant("acme")
    client, browser = signed_in(acme, "member@acme.test")
    expired = obtain_tokens(browser, client, scope="crm.read")["access_token"]
    with schema_context("acme"):
        from oauth2_provider.models import AccessToken

        AccessToken.objects.filter(application__client_id=client.client_id).update(
            expires=timezone.now() - timedelta(seconds=1)
        )
        start = timezone.now().replace(second=0, microsecond=0)
        before = AuthEvent.objects.filter(created_at__gte=start).count()
    invalid = {"class": "INVALID_TOKEN", "channel": "http"}
    metrics_before = samples(scrape(live.url))

    body, headers = modern_message("tools/call", {"name": "crm_search_contacts", "arguments": {"query": "a"}})
    http = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=8))

    def post(authorization: str | None) -> int:
        sent = {**headers, **({"Authorization": authorization} if authorization else {})}
        return http.post(acme.mcp, json=body, headers=sent).status_code

    with http, ThreadPoolExecutor(max_workers=8) as pool:
        made_up = [f"Bearer made-up-{i:06d}-{'x' * 30}" for i in range(2000)]
        anonymous = [None, "Basic Zm9vOmJhcg==", "Bearer"] * 50  # no header, another scheme, no token
        statuses = list(pool.map(post, made_up + anonymous))
    assert statuses == [401] * 2150
    for _ in range(3):
        assert call(acme.mcp, expired, "crm_search_contacts", {"query": "a"}).status_code == 401

    metrics_after = samples(scrape(live.url))
    assert value(metrics_after, "platform_auth_challenges_total", tenant="acme", **invalid) - value(
        metrics_before, "platform_auth_challenges_total", tenant="acme", **invalid
    ) == 2003
    with schema_context("acme"):
        new = AuthEvent.objects.filter(created_at__gte=start)
        total_rows = new.count() - before
        assert total_rows <= 20 + 3, total_rows  # a few minutes' aggregates, and the known client's three
        counts = dict(new.filter(aggregated=True).values_list("auth_class").annotate(n=Sum("count")))
        known = list(new.filter(client_id=client.client_id, auth_class="INVALID_TOKEN"))
    assert counts.get("INVALID_TOKEN", 0) >= 2000 and counts.get("AUTH_REQUIRED", 0) >= 150, counts
    assert len(known) == 3 and all(row.count == 1 and not row.aggregated for row in known)


def test_record_from_takes_what_the_request_would_give(live):
    """A caller that read the client's address and the request's id already records with them."""
    with schema_context("acme"):
        AuthEvent.objects.filter(event="from-probe").delete()
        audit.record_from(
            event="from-probe", outcome="http", user_id=7, request_id_value="r" * 40, source_address="192.0.2.9"
        )
        row = AuthEvent.objects.get(event="from-probe")
        row.delete()
    assert (row.tenant, row.outcome, row.user_id, row.request_id, row.source_address) == (
        "acme",
        "http",
        7,
        "r" * 40,
        "192.0.2.9",
    )


def test_mcp_refusals_of_a_known_client_name_its_address_and_one_id_per_request(live):
    """The MCP endpoint's rows carry the client's address and a request id whether the caller was
    admitted (a scope denial) or its token refused (expired)."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    acme = live.tenant("acme")
    client, browser = signed_in(acme, "member@acme.test")
    token = obtain_tokens(browser, client, scope="crm.read")["access_token"]
    assert call(acme.mcp, token, "crm_create_note", {"contact_id": 1, "body": "x"}).status_code == 403
    with schema_context("acme"):
        AccessToken.objects.filter(application__client_id=client.client_id).update(
            expires=timezone.now() - timedelta(seconds=1)
        )
    assert call(acme.mcp, token, "crm_search_contacts", {"query": "a"}).status_code == 401
    with schema_context("acme"):
        rows = list(AuthEvent.objects.filter(client_id=client.client_id, event="challenge").order_by("id"))
    assert [(row.auth_class, row.outcome, row.tool, bool(row.user_id)) for row in rows] == [
        ("INSUFFICIENT_SCOPE", "http", "crm_create_note", True),
        ("INVALID_TOKEN", "http", "", True),
    ]
    assert all(row.source_address == "127.0.0.1" and len(row.request_id) == 32 for row in rows)
    assert rows[0].request_id != rows[1].request_id
