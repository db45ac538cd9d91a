"""The lifecycle jobs with real Celery worker (and beat) processes, the Redis broker on
loopback and the npm oidc-provider, which counts refreshes and revocations."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken, Application

from config.celery import app as celery_app
from connectors.models import ConnectedAccount, Credential
from jobs.models import JobRun
from oauth.receivers import revoke_tokens_of_deactivated_tenant, revoke_tokens_of_ended_membership
from tenants.signals import membership_ended, tenant_deactivated
from tests.celery_procs import beat, idle, workers
from tests.conftest import PASSWORD
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.mcp_raw import call
from tests.oauth_flow import Tenant, obtain_tokens, signed_in
from tests.support.connectors import bulk_accounts, park_other_due_accounts
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)  # includes creating the test database on a busy machine


@pytest.fixture(autouse=True)
def empty_queue(live):
    celery_app.control.purge()  # nothing queued by earlier tests reaches these workers
    yield
    celery_app.control.purge()


def test_scheduled_refresh_renews_an_account_expiring_in_five_minutes_with_no_tool_call(live, oidc):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    key = add_oidc_provider(oidc)
    park_other_due_accounts("acme", "globex")
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key)
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() + timedelta(minutes=5))
    before = oidc.refresh_grants()
    previous = JobRun.objects.filter(job="connectors.refresh_expiring_in_tenant", tenant_slug="acme").first()
    runs_before = previous.runs if previous else 0
    row = PeriodicTask.objects.get(task="connectors.refresh_expiring")
    saved_interval = row.interval
    fast, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    row.interval, row.last_run_at, row.enabled = fast, None, True  # what an admin does in the platform admin
    row.save()
    try:
        with workers(1) as procs, beat() as beat_proc:
            everything = [*procs, beat_proc]

            def refreshed() -> bool:
                with schema_context("acme"):
                    return ConnectedAccount.objects.get(pk=account.pk).refresh_count >= 1

            wait_for(refreshed, "the scheduled refresh", everything)

            # beat keeps firing every 2 s: the later runs find nothing due
            def runs() -> int:  # the row is written after the run's work: it may not be there yet
                row = JobRun.objects.filter(job="connectors.refresh_expiring_in_tenant", tenant_slug="acme").first()
                return row.runs if row else 0

            wait_for(lambda: runs() >= runs_before + 3, "more scheduled runs", everything)
            line = "job=connectors.refresh_expiring_in_tenant tenant=acme outcome=ok"
            wait_for(lambda: line in procs[0][1].read_text(), "the job's summary line", everything)
            worker_log = procs[0][1].read_text()
    finally:
        row.refresh_from_db()
        row.interval = saved_interval
        row.save()
    assert oidc.refresh_grants() == before + 1
    with schema_context("acme"):
        after = ConnectedAccount.objects.get(pk=account.pk)
        credential = Credential.objects.get(account=after)
    assert after.refresh_count == 1 and after.expires_at > timezone.now() + timedelta(minutes=30)
    run = JobRun.objects.get(job="connectors.refresh_expiring_in_tenant", tenant_slug="acme")
    assert run.runs >= 1 and run.outcome == "ok"
    assert "job=connectors.refresh_expiring_in_tenant tenant=acme outcome=ok" in worker_log
    assert credential.refresh_token not in worker_log and credential.access_token not in worker_log


def test_two_workers_over_200_due_accounts_refresh_each_exactly_once(live, oidc):
    key = add_oidc_provider(oidc)
    park_other_due_accounts("acme", "globex")
    ids = bulk_accounts(oidc, "acme", key, "member@acme.test", 200, expires_in=300)
    before = oidc.refresh_grants()
    env = {"CONNECTORS_REFRESH_BATCH_SIZE": "20"}
    with workers(2, env=env) as procs:
        from connectors.tasks import refresh_expiring_everywhere, refresh_expiring_in_tenant

        refresh_expiring_everywhere.delay()  # as beat would
        refresh_expiring_in_tenant.delay("acme")  # and a second beat started by mistake
        refresh_expiring_in_tenant.delay("acme")

        def all_refreshed() -> bool:
            with schema_context("acme"):
                return ConnectedAccount.objects.filter(pk__in=ids, refresh_count__gte=1).count() == len(ids)

        wait_for(all_refreshed, "200 refreshes", procs, timeout=90)
        wait_for(lambda: idle(2), "the other queued runs to finish", procs)  # they must find nothing to do
        logs = [path.read_text() for _, path in procs]
    assert oidc.refresh_grants() == before + 200
    with schema_context("acme"):
        counts = list(ConnectedAccount.objects.filter(pk__in=ids).values_list("refresh_count", flat=True))
        statuses = set(ConnectedAccount.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert counts == [1] * 200 and statuses == {"active"}
    assert all("job=connectors.refresh_expiring_in_tenant tenant=acme" in log for log in logs), "both workers ran"


def test_removing_a_member_revokes_platform_tokens_at_once_and_the_sweeps_catch_what_was_missed(live, oidc, unique):
    from tenants.services import add_user, remove_user

    email = f"leaver-{unique}@acme.test"
    add_user(slug="acme", email=email, password=PASSWORD, role="member")
    tenant = live.tenant("acme")
    client, member = signed_in(tenant, email)
    token = obtain_tokens(member, client, scope="crm.read")["access_token"]
    assert call(tenant.mcp, token, "crm_search_contacts", {"query": ""}).status_code == 200
    key, user, upstream = connected_member(live, oidc, email)

    remove_user(slug="acme", email=email)
    assert call(tenant.mcp, token, "crm_search_contacts", {"query": ""}).status_code == 401  # at once

    # a token inserted behind the receiver's back (the event is missed): the sweep is the safety net
    membership_ended.disconnect(revoke_tokens_of_ended_membership)
    try:
        with schema_context("acme"):
            application = Application.objects.get(client_id=client.client_id)
            sneaked = AccessToken.objects.create(
                user=user,
                application=application,
                token=f"sneaked-{uuid.uuid4().hex}",
                expires=timezone.now() + timedelta(hours=1),
                scope="crm.read",
            )
    finally:
        membership_ended.connect(revoke_tokens_of_ended_membership)
    before = oidc.stats()["revocations"]
    with workers(1) as procs:
        from connectors.tasks import sweep_everywhere
        from oauth.tasks import revoke_departed_everywhere

        revoke_departed_everywhere.delay()
        sweep_everywhere.delay()

        def swept() -> bool:
            with schema_context("acme"):
                return (
                    not AccessToken.objects.filter(pk=sneaked.pk).exists()
                    and not Credential.objects.filter(pk=upstream.pk).exists()
                )

        wait_for(swept, "the sweeps", procs)
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(user=user, provider__key=key)
    assert (account.status, account.status_reason, account.revocation_pending) == ("revoked", "membership_ended", False)
    assert oidc.introspect(upstream.refresh_token)["active"] is False
    assert oidc.introspect(upstream.access_token)["active"] is False
    assert oidc.stats()["revocations"] >= before + 2
    run = JobRun.objects.get(job="oauth.revoke_departed_in_tenant", tenant_slug="acme")
    assert run.counts["tokens_revoked"] >= 1, run.counts


def test_a_deactivated_tenants_tokens_stop_working_and_its_accounts_are_not_refreshed(live, oidc, unique):
    from tenants.services import add_user, create_tenant, deactivate_tenant

    slug = f"gone_{unique}"
    create_tenant(slug=slug, name="Going away")
    email = f"member-{unique}@gone.test"
    add_user(slug=slug, email=email, password=PASSWORD, role="member")
    tenant = live.tenant(slug)
    client, member = signed_in(tenant, email)
    token = obtain_tokens(member, client, scope="crm.read")["access_token"]
    assert call(tenant.mcp, token, "crm_search_contacts", {"query": ""}).status_code == 200
    key = add_oidc_provider(oidc, slug)
    ids = bulk_accounts(oidc, slug, key, email, 3, expires_in=300)
    with schema_context(slug):
        minted = list(Credential.objects.filter(account_id__in=ids).values_list("refresh_token", flat=True))

    deactivate_tenant(slug=slug)
    assert call(tenant.mcp, token, "crm_search_contacts", {"query": ""}).status_code == 403  # the tenant is closed
    with schema_context(slug):
        assert not AccessToken.objects.exists()  # revoked at once by the receiver
    tenant_deactivated.disconnect(revoke_tokens_of_deactivated_tenant)
    try:
        with schema_context(slug):
            sneaked = AccessToken.objects.create(
                user=None,
                application=Application.objects.get(client_id=client.client_id),
                token=f"sneaked-{uuid.uuid4().hex}",
                expires=timezone.now() + timedelta(hours=1),
                scope="crm.read",
            )
    finally:
        tenant_deactivated.connect(revoke_tokens_of_deactivated_tenant)
    before = oidc.refresh_grants()
    with workers(1) as procs:
        from connectors.tasks import refresh_expiring_everywhere, refresh_expiring_in_tenant, sweep_in_tenant
        from oauth.tasks import revoke_departed_in_tenant

        refresh_expiring_everywhere.delay()
        refresh_expiring_in_tenant.delay(slug)  # queued before the deactivation, say
        revoke_departed_in_tenant.delay(slug)
        sweep_in_tenant.delay(slug)  # after the refreshes on this one worker

        def swept() -> bool:
            return JobRun.objects.filter(job__in=("connectors.sweep_in_tenant",), tenant_slug=slug).exists()

        wait_for(swept, "the sweep of the deactivated tenant", procs)
    assert oidc.refresh_grants() == before  # none of its accounts was refreshed
    with schema_context(slug):
        assert not AccessToken.objects.filter(pk=sneaked.pk).exists()
        accounts = ConnectedAccount.objects.filter(pk__in=ids)
        assert set(accounts.values_list("refresh_count", flat=True)) == {0}
        assert set(accounts.values_list("status_reason", flat=True)) == {"tenant_deactivated"}
        assert not Credential.objects.filter(account_id__in=ids).exists()
    assert [oidc.introspect(t)["active"] for t in minted] == [False] * 3
    assert not JobRun.objects.filter(job="connectors.refresh_expiring_in_tenant", tenant_slug=slug).exists()


def test_platform_admin_shows_the_last_runs_and_runs_a_job_now(live, unique):
    from accounts.models import User
    from connectors.tasks import REENCRYPT, reencrypt_in_tenant
    from tests.admin_http import AdminSession

    reencrypt_in_tenant("globex")  # a first run, recorded
    run = JobRun.objects.get(job=REENCRYPT, tenant_slug="globex")
    assert run.outcome == "ok" and "examined" in run.counts
    User.objects.create_superuser(f"root-{unique}@platform.test", PASSWORD)
    platform = Tenant(live.url, "public")  # the platform admin lives on the public site, at the host root
    admin = AdminSession(platform, f"root-{unique}@platform.test").login()
    page = admin.get("jobs/jobrun/")
    assert page.status_code == 200 and REENCRYPT in page.text and "globex" in page.text
    response = admin.post("jobs/jobrun/", {"action": "run_now", "_selected_action": [str(run.pk)], "index": "0"})
    assert response.status_code == 302, response.text[:500]
    with workers(1) as procs:
        wait_for(lambda: JobRun.objects.get(pk=run.pk).runs == run.runs + 1, "the queued run", procs)


def test_removing_a_member_revokes_their_upstream_account_at_the_provider_without_the_periodic_sweep(
    live, oidc, unique
):
    """Ending a membership queues the tenant's upstream sweep at once (``connectors.receivers``): with
    a worker running and no beat, nothing else would revoke the account at the provider."""
    from tenants.services import add_user, remove_user

    email = f"leaver-now-{unique}@acme.test"
    add_user(slug="acme", email=email, password=PASSWORD, role="member")
    key, user, upstream = connected_member(live, oidc, email)
    before = oidc.stats()["revocations"]
    with workers(1) as procs:
        remove_user(slug="acme", email=email)

        def revoked_at_the_provider() -> bool:
            return oidc.introspect(upstream.refresh_token)["active"] is False

        wait_for(revoked_at_the_provider, "the provider to see the revocation", procs)
        wait_for(lambda: credentials_left("acme", pk=upstream.pk) == 0, "the credential to be deleted", procs)
        summary = "job=connectors.sweep_after_event_in_tenant tenant=acme outcome=ok"
        wait_for(lambda: summary in procs[0][1].read_text(), "the sweep's summary line", procs)
        log = procs[0][1].read_text()
    assert oidc.introspect(upstream.access_token)["active"] is False
    assert oidc.stats()["revocations"] >= before + 2
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(user=user, provider__key=key)
        assert not Credential.objects.filter(pk=upstream.pk).exists()
    assert (account.status, account.status_reason, account.revocation_pending) == ("revoked", "membership_ended", False)
    assert upstream.refresh_token not in log and upstream.access_token not in log


def connected_member(live, oidc, email: str):
    """The member ``email`` of acme connected to a new provider (as the provider's account named like
    the address's local part): the provider's key, the user, and the credential, live at the provider."""
    from accounts.models import User

    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc, email=email)
    browser.steer(test_account=email.split("@")[0])
    assert browser.connect(key).status_code == 302
    user = User.objects.get(email=email)
    with schema_context("acme"):
        upstream = Credential.objects.get(account__user=user, account__provider__key=key)
    assert oidc.introspect(upstream.refresh_token)["active"] is True
    return key, user, upstream


def credentials_left(slug: str, **lookup) -> int:
    with schema_context(slug):
        return Credential.objects.filter(**lookup).count()


def test_deactivating_a_tenant_revokes_its_upstream_accounts_at_the_provider_without_the_periodic_sweep(
    live, oidc, unique
):
    from tenants.services import add_user, create_tenant, deactivate_tenant

    slug = f"closing_{unique}"
    create_tenant(slug=slug, name="Closing down")
    email = f"member-{unique}@closing.test"
    add_user(slug=slug, email=email, password=PASSWORD, role="member")
    key = add_oidc_provider(oidc, slug)
    ids = bulk_accounts(oidc, slug, key, email, 3, expires_in=3600)
    with schema_context(slug):
        minted = list(Credential.objects.filter(account_id__in=ids).values_list("refresh_token", flat=True))
    assert [oidc.introspect(t)["active"] for t in minted] == [True] * 3
    with workers(1) as procs:
        deactivate_tenant(slug=slug)

        def revoked_at_the_provider() -> bool:
            return [oidc.introspect(t)["active"] for t in minted] == [False] * 3

        wait_for(revoked_at_the_provider, "the provider to see the revocations", procs)
        wait_for(lambda: credentials_left(slug, account_id__in=ids) == 0, "the credentials to be deleted", procs)
    with schema_context(slug):
        accounts = ConnectedAccount.objects.filter(pk__in=ids)
        assert set(accounts.values_list("status_reason", flat=True)) == {"tenant_deactivated"}
        assert not Credential.objects.filter(account_id__in=ids).exists()
