"""Metrics: /metrics needs the scrape token; every exported metric's labels are on
the allow-list (tenant slug at most, never a user, token, client or free text); multiprocess mode sums
the samples of several processes; Celery per-tenant job results are counted."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context
from prometheus_client.parser import text_string_to_metric_families

from observability import metrics
from observability.models import AuthEvent
from observability.tasks import purge_auth_events_in_tenant
from tests.observability_helpers import samples, scrape, value
from tools.run_platform import prepare_metrics_dir

ROOT = Path(__file__).resolve().parent.parent


def test_metrics_need_the_scrape_token(live):
    assert settings.METRICS_TOKEN, "development generates a default in var/dev.env"
    url = f"{live.url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Basic {settings.METRICS_TOKEN}"}).status_code == 401
    ok = httpx.get(url, headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
    assert ok.status_code == 200 and "platform_auth_challenges" in ok.text
    assert httpx.get(live.tenant_url("acme", "metrics")).status_code == 404  # the public site only


def test_metrics_refuse_everyone_without_a_configured_token(live, settings):
    settings.METRICS_TOKEN = ""
    assert httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer"}).status_code == 401
    assert httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer x"}).status_code == 401


def test_every_exported_label_is_allowed(live):
    for metric in metrics.ALL:
        assert set(metric._labelnames) <= metrics.ALLOWED_LABELS, metric._name
        assert "tenant" in metric._labelnames
    metrics.tool_call("acme", "crm_search_contacts", "ok")  # at least one sample of the platform's own
    families = [f for f in text_string_to_metric_families(scrape(live.url)) if f.name.startswith("platform_")]
    assert families
    for family in families:
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= metrics.ALLOWED_LABELS, (family.name, sample.labels)
    forbidden = {"user", "user_id", "client", "client_id", "token", "secret", "email", "description", "scope"}
    assert not forbidden & metrics.ALLOWED_LABELS


def _in_process(code: str, directory: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_multiprocess_mode_sums_every_process(tmp_path):
    directory = prepare_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")})
    (directory / "counter_999999.db").write_bytes(b"")  # a stale file from an earlier run ...
    directory = prepare_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert list(directory.iterdir()) == []  # ... is removed at start
    record = "from observability import metrics; metrics.tool_call('acme', 'crm_search_contacts', 'ok')"
    for _ in range(3):  # three processes, like gunicorn workers and Celery children
        _in_process(record, directory)
    assert len(list(directory.glob("counter_*.db"))) == 3
    text = _in_process("from observability import metrics; print(metrics.exposition().decode())", directory)
    assert value(samples(text), "platform_tool_calls_total", tenant="acme", tool="crm_search_contacts",
                 outcome="ok") == 3


def test_gunicorn_drops_dead_workers_in_multiprocess_mode():
    from config import gunicorn

    assert callable(gunicorn.child_exit)


@pytest.mark.django_db
def test_per_tenant_job_results_are_counted():
    with schema_context("acme"):
        old = [AuthEvent.objects.create(tenant="acme", event="challenge") for _ in range(2)]
        AuthEvent.objects.filter(pk__in=[e.pk for e in old]).update(
            created_at=timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS + 1)
        )
        kept = AuthEvent.objects.create(tenant="acme", event="challenge")
    before = samples(metrics.exposition().decode())
    result = purge_auth_events_in_tenant.apply(args=("acme",)).get()  # Celery sends task_success
    assert result == {"purged": 2}
    after = samples(metrics.exposition().decode())
    with schema_context("acme"):
        assert list(AuthEvent.objects.filter(pk__in=[kept.pk, *(e.pk for e in old)])) == [kept]
    name, labels = "platform_job_results_total", {"tenant": "acme", "job": "observability.purge_auth_events_in_tenant",
                                                 "result": "purged"}
    assert value(after, name, **labels) - value(before, name, **labels) == 2


def test_celery_task_success_is_counted():
    from celery.signals import task_success

    from connectors.tasks import refresh_expiring_in_tenant as task

    task.push_request(args=("acme",))
    try:
        before = samples(metrics.exposition().decode())
        task_success.send(sender=task, result={"refreshed": 2, "needs_reauth": 1, "unavailable": 0})
        after = samples(metrics.exposition().decode())
    finally:
        task.pop_request()
    job = "connectors.refresh_expiring_in_tenant"
    for result, expected in (("refreshed", 2), ("needs_reauth", 1), ("unavailable", 0)):
        labels = {"tenant": "acme", "job": job, "result": result}
        assert value(after, "platform_job_results_total", **labels) - value(
            before, "platform_job_results_total", **labels) == expected


@pytest.mark.django_db
def test_the_purge_has_its_own_beat_row():
    from django_celery_beat.models import PeriodicTask

    row = PeriodicTask.objects.get(task="observability.purge_auth_events_everywhere")
    assert row.enabled and row.crontab is not None


def test_revocations_of_an_ended_membership_are_counted(live, unique):
    from tenants.services import add_user, remove_user
    from tests.conftest import PASSWORD
    from tests.oauth_flow import Browser, obtain_tokens, register

    email = f"ended-{unique}@acme.test"
    add_user(slug="acme", email=email, password=PASSWORD, role="member")
    acme = live.tenant("acme")
    browser = Browser(acme, email)
    browser.login()
    client = register(acme)
    for _ in range(2):
        obtain_tokens(browser, client, scope="crm.read")
    labels = {"tenant": "acme", "reason": "membership_ended"}
    before = value(samples(scrape(live.url)), "platform_oauth_revocations_total", **labels)
    remove_user(slug="acme", email=email)
    after = value(samples(scrape(live.url)), "platform_oauth_revocations_total", **labels)
    assert after - before == 2
