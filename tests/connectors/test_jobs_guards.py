"""The lifecycle jobs' guards, in-process against the oidc-provider: transient failures back off and
end in ``needs_reauth`` after the give-up time; a job already running in a tenant (on another worker
or beat) is not run a second time; ended members' accounts are not refreshed."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors.errors import ReauthRequired
from connectors.models import ConnectedAccount
from connectors.tasks import REFRESH, SWEEP, refresh_expiring_in_tenant, sweep_in_tenant
from connectors.tokens import access_token
from jobs.models import JobRun
from jobs.runner import exclusive
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.support.connectors import park_other_due_accounts

pytestmark = pytest.mark.timeout(300)  # includes creating the test database on a busy machine


def connected_expiring(live, oidc) -> tuple[str, ConnectedAccount]:
    park_other_due_accounts("acme")
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key)
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() + timedelta(minutes=5))
    return key, account


def refresh_failed_once(live, oidc, settings, *, failures: int) -> tuple[str, ConnectedAccount]:
    """An expiring account whose refresh failed once (the provider answers 503 ``failures`` times)."""
    settings.CONNECTORS_REFRESH_ATTEMPTS = 1
    key, account = connected_expiring(live, oidc)
    oidc.fail_next(failures, status=503)
    assert refresh_expiring_in_tenant("acme")["backoff"] == 1
    return key, account


def test_transient_failures_back_off_then_give_up_as_needs_reauth(live, oidc, settings):
    key, account = refresh_failed_once(live, oidc, settings, failures=5)
    with schema_context("acme"):
        backing_off = ConnectedAccount.objects.get(pk=account.pk)
    assert backing_off.status == "active" and backing_off.refresh_failures == 1
    assert backing_off.next_refresh_at > timezone.now() + timedelta(seconds=10)
    requests = oidc.stats()["token_requests"]
    assert refresh_expiring_in_tenant("acme")["batches"] == 0  # still backing off: the provider is left alone
    assert oidc.stats()["token_requests"] == requests
    with schema_context("acme"):  # failing for longer than the give-up time, due again
        ConnectedAccount.objects.filter(pk=account.pk).update(
            next_refresh_at=timezone.now() - timedelta(seconds=1),
            refresh_failing_since=timezone.now() - timedelta(seconds=settings.CONNECTORS_REFRESH_GIVE_UP_SECONDS + 1),
        )
    assert refresh_expiring_in_tenant("acme")["gave_up"] == 1
    with schema_context("acme"):
        given_up = ConnectedAccount.objects.get(pk=account.pk)
        assert (given_up.status, given_up.status_reason) == ("needs_reauth", "refresh_failing")
        with pytest.raises(ReauthRequired):
            access_token(user_id=account.user_id, provider_key=key)
    oidc.fail_next(0)


def test_a_recovered_provider_resets_the_backoff(live, oidc, settings):
    _, account = refresh_failed_once(live, oidc, settings, failures=1)
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(next_refresh_at=timezone.now() - timedelta(seconds=1))
    before = oidc.refresh_grants()
    assert refresh_expiring_in_tenant("acme")["refreshed"] == 1
    assert oidc.refresh_grants() == before + 1
    with schema_context("acme"):
        after = ConnectedAccount.objects.get(pk=account.pk)
    assert (after.refresh_failures, after.refresh_failing_since, after.next_refresh_at) == (0, None, None)


def test_a_sweep_already_running_elsewhere_is_not_run_again(live):
    held, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        with exclusive(f"{SWEEP}:acme") as got:
            assert got
            held.set()
            release.wait(30)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        runs = JobRun.objects.filter(job=SWEEP, tenant_slug="acme").values_list("runs", flat=True).first() or 0
        assert sweep_in_tenant("acme") == {"skipped": 1}
        assert (
            JobRun.objects.filter(job=SWEEP, tenant_slug="acme").values_list("runs", flat=True).first() or 0
        ) == runs
    finally:
        release.set()
        thread.join()
    assert "revoked" in sweep_in_tenant("acme")  # free again: it runs


def test_ended_members_accounts_are_not_refreshed(live, oidc, unique):
    from tenants.services import add_user, remove_user
    from tests.conftest import PASSWORD

    email = f"ended-{unique}@acme.test"
    add_user(slug="acme", email=email, password=PASSWORD, role="member")
    park_other_due_accounts("acme")
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc, email=email)
    assert browser.connect(key).status_code == 302
    with schema_context("acme"):
        ConnectedAccount.objects.filter(provider__key=key).update(expires_at=timezone.now() + timedelta(minutes=5))
    remove_user(slug="acme", email=email)
    before = oidc.refresh_grants()
    counts = refresh_expiring_in_tenant("acme")
    assert counts["batches"] == 0 and oidc.refresh_grants() == before
    run = JobRun.objects.get(job=REFRESH, tenant_slug="acme")
    assert run.counts["refreshed"] == 0


@pytest.mark.django_db
def test_every_job_has_its_own_admin_managed_schedule():
    from django_celery_beat.models import PeriodicTask

    rows = {row.task: row for row in PeriodicTask.objects.all()}
    for task in ("connectors.refresh_expiring", "connectors.sweep", "connectors.reencrypt", "oauth.revoke_departed"):
        assert rows[task].enabled and rows[task].interval is not None, task
    assert rows["connectors.refresh_expiring"].interval.every == 60
    assert rows["oauth.purge_tokens"].crontab is not None


@pytest.mark.django_db
def test_the_purge_removes_expired_platform_tokens_and_keeps_live_ones(django_user_model):
    from oauth2_provider.models import AccessToken, Application

    from oauth.tasks import purge_tokens_in_tenant

    user = django_user_model.objects.get(email="member@acme.test")
    with schema_context("acme"):
        app = Application.objects.create(
            name="purge test", client_type="public", authorization_grant_type="authorization-code"
        )
        expired = AccessToken.objects.create(
            user=user, application=app, token="purge-expired", expires=timezone.now() - timedelta(days=1), scope="x"
        )
        live = AccessToken.objects.create(
            user=user, application=app, token="purge-live", expires=timezone.now() + timedelta(hours=1), scope="x"
        )
    counts = purge_tokens_in_tenant("acme")
    assert counts["access_tokens_purged"] >= 1
    with schema_context("acme"):
        assert not AccessToken.objects.filter(pk=expired.pk).exists()
        assert AccessToken.objects.filter(pk=live.pk).exists()


@pytest.mark.django_db
def test_the_key_job_reencrypts_credentials_under_an_old_key(django_user_model):
    from django.conf import settings as django_settings
    from django.test import override_settings

    from connectors.models import Credential
    from connectors.services import add_provider
    from connectors.tasks import reencrypt_in_tenant

    user = django_user_model.objects.get(email="member@globex.test")
    with schema_context("globex"):
        provider, _ = add_provider(key="jobrot", preset_name="google", client_id="id", client_secret="s")
        account = ConnectedAccount.objects.create(user=user, provider=provider)
        Credential.objects.create(account=account, access_token="at-job", refresh_token="rt-job")
    with override_settings(FERNET_KEYS=["another-test-only-fernet-key", *django_settings.FERNET_KEYS]):
        first = reencrypt_in_tenant("globex")
        again = reencrypt_in_tenant("globex")
    assert first["rotated"] >= 3  # the client secret and both tokens
    assert again["rotated"] == 0 and again["already_current"] >= 3
    with override_settings(FERNET_KEYS=["another-test-only-fernet-key"]), schema_context("globex"):
        credential = Credential.objects.get(account=account)
        assert (credential.access_token, credential.refresh_token) == ("at-job", "rt-job")
