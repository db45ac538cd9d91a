"""Refresh timing from each token's own life (``connectors.timing``), counted at the npm oidc-provider,
whose access tokens live 30 s, 90 s or an hour depending on the client (tests/node_oidc/server.mjs).

- 30 s tokens: twenty parallel tool calls after expiry make exactly one refresh;
- 90 s tokens, no tool call for 180 s, the job every minute: one refresh per half lifetime, no loop;
- one-hour tokens: the job refreshes about every 50 minutes (lifetime minus the 600 s window).

The long runs move the connectors' clock (``connectors.clock``) instead of sleeping and run the job's
tenant task in-process, once per simulated minute. The three copies of the rule (Python, the job's
ORM filter, the hand-written ``_MARK`` statement) are checked against each other."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import clock, timing, tokens
from connectors.models import ConnectedAccount, Credential, Provider
from connectors.tasks import refresh_expiring_in_tenant
from tests.conftest import PASSWORD
from tests.connectors.conftest import TTL_CLIENTS, ConnectBrowser, OidcServer, add_oidc_provider
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, signed_in

pytestmark = pytest.mark.timeout(240)

CLIENT_30S, CLIENT_90S, CLIENT_1H = TTL_CLIENTS


def test_thirty_second_tokens_twenty_parallel_tool_calls_after_expiry_make_one_refresh(live, oidc, unique):
    key = add_oidc_provider(oidc, client_id=CLIENT_30S)
    browser = ConnectBrowser(live, oidc)
    upstream_account = f"thirty-{unique}"
    browser.steer(test_account=upstream_account)
    assert browser.connect(key).status_code == 302
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key, user__email="member@acme.test")
    assert account.token_lifetime_seconds == 30  # the provider's expires_in, stored
    client, member = signed_in(live.tenant("acme"), "member@acme.test")
    token = obtain_tokens(member, client, scope="connections")["access_token"]
    with schema_context("acme"):  # 31 s later: expired
        ConnectedAccount.objects.filter(pk=account.pk).update(
            token_issued_at=timezone.now() - timedelta(seconds=31), expires_at=timezone.now() - timedelta(seconds=1)
        )
    before = oidc.account_refreshes(upstream_account)
    barrier = threading.Barrier(20)

    def one(_: int) -> dict:
        barrier.wait()
        response = call(live.tenant_url("acme", "mcp"), token, "connector_profile", {"provider": key})
        assert response.status_code == 200, response.text
        return response.json()["result"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert [r["isError"] for r in results] == [False] * 20, [r for r in results if r["isError"]][:1]
    assert {r["structuredContent"]["profile"]["sub"] for r in results} == {upstream_account}
    assert oidc.account_refreshes(upstream_account) == before + 1
    with schema_context("acme"):
        after = ConnectedAccount.objects.get(pk=account.pk)
    assert after.refresh_count == 1 and after.token_lifetime_seconds == 30


# --- the job, with the connectors' clock moved minute by minute --------------------------------------


def tenant_with_account(oidc: OidcServer, unique: str, client_id: str, lifetime: int) -> tuple[str, int, str]:
    """A fresh tenant (only this account in it), a member, a provider at the test server as
    ``client_id`` and an account connected just now with a refresh token the provider issued.
    Returns the slug, the account id and the account's name at the provider."""
    from accounts.models import User
    from tenants.services import add_user, create_tenant

    slug = f"timing_{unique}"
    create_tenant(slug=slug, name="Refresh timing")
    email = f"member-{unique}@timing.test"
    add_user(slug=slug, email=email, password=PASSWORD, role="member")
    key = add_oidc_provider(oidc, slug, client_id=client_id)
    prefix = f"timing-{uuid.uuid4().hex[:8]}"
    (refresh_token,) = oidc.mint(1, prefix=prefix, client_id=client_id)
    now = clock.now()
    with schema_context(slug):
        account = ConnectedAccount.objects.create(
            user=User.objects.get(email=email),
            provider=Provider.objects.get(key=key),
            token_issued_at=now,
            token_lifetime_seconds=lifetime,
            expires_at=now + timedelta(seconds=lifetime),
            granted_scopes=["openid"],
        )
        Credential.objects.create(account=account, access_token="issued-at-connect", refresh_token=refresh_token)
    return slug, account.pk, f"{prefix}-0"


def run_job_every_minute(oidc: OidcServer, slug: str, upstream_account: str, minutes: int) -> list[tuple[int, int]]:
    """The job at minutes 0..``minutes`` of the connectors' clock; (minute, refreshes) for the runs
    that refreshed, counted at the provider."""
    refreshing_runs = []
    for minute in range(minutes + 1):
        before = oidc.account_refreshes(upstream_account)
        counts = refresh_expiring_in_tenant(slug)
        made = oidc.account_refreshes(upstream_account) - before
        assert counts["refreshed"] == made, (minute, counts)
        if made:
            refreshing_runs.append((minute, made))
        clock.advance(60)
    return refreshing_runs


def test_ninety_second_tokens_without_tool_calls_are_refreshed_once_per_half_life_not_in_a_loop(live, oidc, unique):
    slug, account_id, upstream_account = tenant_with_account(oidc, unique, CLIENT_90S, 90)
    with clock.shifted():
        runs = run_job_every_minute(oidc, slug, upstream_account, minutes=3)  # 180 s, four runs
    refreshes = sum(n for _, n in runs)
    assert 1 <= refreshes <= 5, runs
    assert all(n == 1 for _, n in runs), f"one run refreshed an account more than once: {runs}"
    with schema_context(slug):
        account = ConnectedAccount.objects.get(pk=account_id)
    assert account.status == "active" and account.token_lifetime_seconds == 90  # the provider's answer
    assert account.refresh_count == refreshes


def test_one_hour_tokens_are_refreshed_about_every_fifty_minutes_never_every_minute(live, oidc, unique):
    slug, account_id, upstream_account = tenant_with_account(oidc, unique, CLIENT_1H, 3600)
    with clock.shifted():
        runs = run_job_every_minute(oidc, slug, upstream_account, minutes=180)
    minutes = [minute for minute, _ in runs]
    assert minutes == [50, 100, 150], runs  # lifetime 60 min minus the 600 s window: every 50 minutes
    with schema_context(slug):
        assert ConnectedAccount.objects.get(pk=account_id).refresh_count == 3


def test_a_token_without_expiry_is_not_refreshed_by_the_job_or_on_demand(live, oidc, unique):
    """No ``expires_in`` (and no documented lifetime): refreshed only when the provider refuses it."""
    slug, account_id, upstream_account = tenant_with_account(oidc, unique, CLIENT_1H, 3600)
    with schema_context(slug):
        ConnectedAccount.objects.filter(pk=account_id).update(expires_at=None, token_lifetime_seconds=None)
        account = ConnectedAccount.objects.select_related("provider").get(pk=account_id)
    who = {"user_id": account.user_id, "provider_key": account.provider.key}
    with clock.shifted():
        assert run_job_every_minute(oidc, slug, upstream_account, minutes=90) == []
        with schema_context(slug):
            assert tokens.access_token(**who) == "issued-at-connect"
            assert oidc.account_refreshes(upstream_account) == 0
            # the provider refused it (an upstream 401): one forced refresh, then the new token
            fresh = tokens.refresh_refused(**who, refused_token="issued-at-connect")
            again = tokens.refresh_refused(**who, refused_token="issued-at-connect")
    assert fresh == again != "issued-at-connect"  # the second caller got the first one's token
    assert oidc.account_refreshes(upstream_account) == 1


# --- the three copies of the rule agree --------------------------------------------------------------

LIFETIMES = (None, 10, 30, 90, 300, 3600, 86400)
REMAINING = (-30, 0, 2.5, 5, 7.5, 10, 15, 22.5, 29, 44, 45, 46, 60, 61, 75, 150, 299, 599, 600, 601, 1800, 43200, 90000)


@pytest.mark.django_db
def test_the_python_orm_and_sql_rules_agree(django_user_model):
    user = django_user_model.objects.get(email="member@acme.test")
    now = clock.now()
    with schema_context("acme"):
        provider = Provider.objects.create(
            key=f"rules-{uuid.uuid4().hex[:6]}", display_name="rules", client_id="c",
            authorization_endpoint="https://rules.example/a", token_endpoint="https://rules.example/t",
        )  # fmt: skip
        ConnectedAccount.objects.filter(user=user).update(expires_at=None)  # other tests' accounts: not due
        cases = {}
        for lifetime in LIFETIMES:
            for remaining in REMAINING:
                other = django_user_model.objects.create(email=f"rules-{uuid.uuid4().hex[:10]}@acme.test")
                account = ConnectedAccount.objects.create(
                    user=other,
                    provider=provider,
                    token_lifetime_seconds=lifetime,
                    expires_at=now + timedelta(seconds=remaining),
                )
                Credential.objects.create(account=account, access_token="a", refresh_token="r")
                cases[account.pk] = (lifetime, remaining, account.expires_at)
        for rule in (timing.on_demand(), timing.proactive()):
            python = {
                pk for pk, (lifetime, _, expires) in cases.items()
                if timing.is_due(rule, expires_at=expires, lifetime=lifetime, now=now)
            }  # fmt: skip
            orm = set(
                ConnectedAccount.objects.filter(pk__in=cases).filter(timing.due_filter(rule, now)).values_list(
                    "pk", flat=True
                )
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT a.id FROM {ConnectedAccount._meta.db_table} AS a "
                    f"WHERE a.id = ANY(%(ids)s) AND {timing.DUE_SQL}",
                    {"ids": list(cases), **timing.due_params(rule, now)},
                )
                sql = {row[0] for row in cursor.fetchall()}
            marked = set()
            for pk in cases:  # the real statements (the SQL one and its ORM twin), each rolled back
                with transaction.atomic():
                    if tokens._mark(pk, rule, now) is not None:
                        marked.add(pk)
                    transaction.set_rollback(True)
                with transaction.atomic():
                    settled = tokens._mark_or_settle(pk, rule, None, now)
                    assert isinstance(settled, tokens.Refreshed) == (pk not in python), cases[pk]
                    transaction.set_rollback(True)
            assert python == orm == sql == marked, sorted(cases[pk] for pk in python ^ (orm & sql & marked))
            assert python and python != set(cases)  # the grid has both sides
        # never due before half the lifetime, whatever the caps
        for pk in python:
            lifetime, remaining, _ = cases[pk]
            assert lifetime is None or remaining <= lifetime / 2
