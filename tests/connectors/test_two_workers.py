"""Single flight across processes: gunicorn with two worker processes (threads in each) on the test
database; twenty concurrent MCP tool calls over an expired upstream token cause exactly one refresh
at the npm oidc-provider, and all twenty succeed. The access log names the worker process of every
call, and the test requires both workers to have served some of the twenty: each worker holds at
most ten connections (``--worker-connections``) and the provider's answer to the one refresh is held
back, so neither worker can take all twenty."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors.models import ConnectedAccount
from probe.ready import wait_until_up
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.database import database_url
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, signed_in
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Gunicorn:
    url: str
    access_log: Path

    def worker_pids(self, path: str, expected: int) -> list[str]:
        """The worker pid of each logged request to ``path`` (waits until ``expected`` are logged)."""
        for _ in range(50):
            lines = [line.split() for line in self.access_log.read_text().splitlines()]
            pids = [fields[0] for fields in lines if len(fields) == 4 and fields[2] == path and fields[3] == "200"]
            if len(pids) >= expected:
                return pids
            time.sleep(0.1)
        return pids


@pytest.fixture(scope="module")
def gunicorn(live_server_url, tmp_path_factory) -> Iterator[Gunicorn]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    access_log = tmp_path_factory.mktemp("gunicorn") / "access.log"
    command += ["--workers", "2", "--threads", "10", "--worker-connections", "10", "--log-level", "warning"]
    # one line per request: worker pid, method, path, status (nothing secret: no query, no headers)
    command += ["--access-logfile", str(access_log), "--access-logformat", "%(p)s %(m)s %(U)s %(s)s"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        assert wait_until_up(f"{base}/t/acme/healthz"), "gunicorn did not start"
        yield Gunicorn(base, access_log)
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.timeout(120)
def test_twenty_concurrent_tool_calls_across_two_workers_refresh_once(live, oidc, gunicorn):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_account="dave")
    assert browser.connect(key).status_code == 302
    # the platform token comes from the live server (the test process's password hasher); gunicorn is
    # addressed under the live server's host name, so the token's audience (RFC 8707) matches there
    client, member = signed_in(live.tenant("acme"), "member@acme.test")
    token = obtain_tokens(member, client, scope="connections")["access_token"]
    same_host = {"Host": live.url.removeprefix("http://")}
    with schema_context("acme"):
        ConnectedAccount.objects.filter(provider__key=key).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = oidc.refresh_grants()
    oidc.delay_next(1, 1500)  # the one refresh holds its worker's ten connections open meanwhile
    barrier = threading.Barrier(20)

    def one(_: int) -> dict:
        barrier.wait()
        response = call(f"{gunicorn.url}/t/acme/mcp", token, "connector_profile", {"provider": key}, headers=same_host)
        assert response.status_code == 200, response.text
        return response.json()["result"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert [r["isError"] for r in results] == [False] * 20
    assert {r["structuredContent"]["profile"]["sub"] for r in results} == {"dave"}
    assert oidc.refresh_grants() == before + 1
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key)
    assert account.refresh_count == 1 and account.status == "active"
    pids = gunicorn.worker_pids("/t/acme/mcp", 20)
    assert len(pids) == 20, pids
    print(f"calls per gunicorn worker: {dict(Counter(pids))}")  # shown with -s
    assert len(set(pids)) == 2, f"both workers must serve some of the calls: {Counter(pids)}"
