"""Celery with a real worker process and the configured broker (Redis in CI, the filesystem
transport otherwise) over the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import Application

from oauth.models import ClientProfile
from probe.ready import stop_process
from tests.database import database_url
from tests.oauth_flow import register

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def worker(live):
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield process
    stop_process(process)


def test_fan_out_task_expires_stale_clients_in_every_tenant(live, worker):
    from oauth.tasks import expire_unused_clients_everywhere

    stale = {}
    for slug in ("acme", "globex"):
        client = register(live.tenant(slug))
        with schema_context(slug):
            ClientProfile.objects.filter(application__client_id=client.client_id).update(
                created_at=timezone.now() - timedelta(seconds=settings.OAUTH_DCR_CLIENT_IDLE_SECONDS + 60)
            )
        stale[slug] = client.client_id

    expire_unused_clients_everywhere.delay()
    deadline = time.monotonic() + 60
    remaining = dict(stale)
    while remaining and time.monotonic() < deadline and worker.poll() is None:
        for slug, client_id in list(remaining.items()):
            with schema_context(slug):
                if not Application.objects.filter(client_id=client_id).exists():
                    del remaining[slug]
        time.sleep(0.3)
    assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
    assert remaining == {}, f"not expired by the worker: {remaining}"


@pytest.mark.django_db
def test_beat_schedule_is_in_the_database():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="oauth.expire_unused_clients_everywhere")
    assert task.enabled and task.crontab is not None
