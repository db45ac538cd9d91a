"""A worker SIGKILLed in the middle of a refresh (after the provider rotated, before the worker got
the answer) leaves a visible ``refreshing`` mark and frees the lock; the next attempt
resolves it deterministically: the provider already rotated, so the account becomes ``needs_reauth``
with reason ``refresh_lost``, with one call to the provider and no retry storm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import tokens
from connectors.errors import ReauthRequired
from connectors.models import ConnectedAccount
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.database import database_url
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import django, sys
django.setup()
from django_tenants.utils import schema_context
from connectors import tokens
with schema_context("acme"):
    tokens.access_token(user_id=int(sys.argv[1]), provider_key=sys.argv[2])
"""


@pytest.mark.timeout(90)
def test_sigkill_mid_refresh_is_recovered_as_refresh_lost(live, oidc):
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key, user__email="member@acme.test")
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    stats = oidc.stats()
    oidc.delay_next(1, ms=3000)
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(account.user_id), key], cwd=ROOT, env=env)
    try:
        refreshes = stats["grants"].get("refresh_token", 0)
        wait_for(lambda: oidc.refresh_grants() == refreshes + 1)  # rotated at the provider, answer held back
        with schema_context("acme"):
            marked = ConnectedAccount.objects.get(pk=account.pk)
        assert marked.status == "refreshing" and marked.refreshing_since is not None
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    with schema_context("acme"):
        assert ConnectedAccount.objects.get(pk=account.pk).status == "refreshing"  # visible, not lost
        started = time.monotonic()
        with pytest.raises(ReauthRequired) as error:
            tokens.access_token(user_id=account.user_id, provider_key=key)
        assert time.monotonic() - started < 10  # PostgreSQL freed the dead worker's lock
        after = ConnectedAccount.objects.get(pk=account.pk)
    assert error.value.code == "refresh_lost"
    assert (after.status, after.status_reason, after.refreshing_since) == ("needs_reauth", "refresh_lost", None)
    requests = oidc.stats()["token_requests"]
    with schema_context("acme"), pytest.raises(ReauthRequired):
        tokens.access_token(user_id=account.user_id, provider_key=key)
    assert oidc.stats()["token_requests"] == requests  # terminal until the user reconnects
