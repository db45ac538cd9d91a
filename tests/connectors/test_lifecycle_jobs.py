"""The connectors' Celery jobs (called in-process, against the real provider): proactive refresh of
accounts about to expire, and the sweep that retries failed revocations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors.models import ConnectedAccount, Credential
from connectors.services import disconnect
from connectors.tasks import refresh_expiring_in_tenant, sweep_in_tenant
from tests.connectors.conftest import ConnectBrowser
from tests.support.connectors import connected_account

pytestmark = pytest.mark.timeout(90)


def test_proactive_refresh_renews_accounts_about_to_expire(live, oidc):
    _, soon = connected_account(live, oidc)
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + timedelta(seconds=120))
        far = set(
            ConnectedAccount.objects.filter(
                status="active", expires_at__gt=timezone.now() + timedelta(hours=1)
            ).values_list("pk", flat=True)
        )
        old = Credential.objects.get(account=soon).refresh_token
    counts = refresh_expiring_in_tenant("acme")
    assert counts["refreshed"] >= 1
    with schema_context("acme"):
        after = ConnectedAccount.objects.get(pk=soon.pk)
        assert after.refresh_count == 1 and after.expires_at > timezone.now() + timedelta(minutes=30)
        assert Credential.objects.get(account=soon).refresh_token != old
        untouched = ConnectedAccount.objects.filter(
            pk__in=far, refresh_count__gt=0, last_refreshed_at__gt=after.last_refreshed_at
        )
        assert not untouched.exists()


def disconnected_revocation_failing(live, oidc):
    """An account disconnected while the provider's revocation endpoint answered 503 once: its key,
    the account, the credential it had and the disconnect's outcome."""
    key, account = connected_account(live, oidc)
    with schema_context("acme"):
        credential = Credential.objects.get(account=account)
    oidc.fail_next(1, status=503, path="/token/revocation")
    with schema_context("acme"):
        _, outcome = disconnect(user_id=account.user_id, provider_key=key)
    return key, account, credential, outcome


def test_failed_revocation_is_kept_and_retried_by_the_sweep(live, oidc):
    _, account, credential, outcome = disconnected_revocation_failing(live, oidc)
    with schema_context("acme"):
        pending = ConnectedAccount.objects.get(pk=account.pk)
        assert "pending" in outcome.detail
        assert (pending.status, pending.revocation_pending) == ("revoked", True)
        assert Credential.objects.filter(account=account).exists()  # kept for the sweep
    assert oidc.introspect(credential.refresh_token)["active"] is True
    assert sweep_in_tenant("acme")["revoked"] >= 1
    assert oidc.introspect(credential.refresh_token)["active"] is False
    assert oidc.introspect(credential.access_token)["active"] is False
    with schema_context("acme"):
        assert ConnectedAccount.objects.get(pk=account.pk).revocation_pending is False
        assert not Credential.objects.filter(account=account).exists()


@pytest.mark.django_db
def test_the_jobs_have_admin_managed_schedules():
    from django_celery_beat.models import PeriodicTask

    tasks = dict(PeriodicTask.objects.filter(task__startswith="connectors.").values_list("task", "interval__every"))
    assert tasks == {"connectors.refresh_expiring": 60, "connectors.sweep": 900, "connectors.reencrypt": 3600}


def test_reconnecting_revokes_credentials_still_pending_revocation(live, oidc):
    key, account, old, _ = disconnected_revocation_failing(live, oidc)
    with schema_context("acme"):
        assert ConnectedAccount.objects.get(pk=account.pk).revocation_pending is True
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    assert oidc.introspect(old.refresh_token)["active"] is False  # not orphaned by the new credential
    with schema_context("acme"):
        again = ConnectedAccount.objects.get(pk=account.pk)
        assert (again.status, again.revocation_pending) == ("active", False)
        assert Credential.objects.get(account=again).refresh_token != old.refresh_token
