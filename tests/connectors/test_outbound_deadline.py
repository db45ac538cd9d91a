"""Bounded outbound calls: every call to a provider ends at its total deadline (connect, headers and
body together), however slowly the provider drips its answer; calls beyond the provider's concurrency
bound are refused at once; a slow provider of one tenant cannot hold every web thread, so another
tenant is served meanwhile. Against a loopback drip server (headers, then one byte every 2 s) and a
real gunicorn (one worker, four threads: the production worker class)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django_tenants.utils import schema_context

from connectors import http
from connectors.models import Provider
from probe.ready import stop_process, wait_until_up
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.connectors.stub_provider import USERINFO, Answer, stub_provider, wait_until
from tests.database import database_url
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, signed_in
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
DRIP = b'{"sub": "' + b"d" * 200 + b'"}'  # 200-odd bytes at one byte every 2 s: minutes


@pytest.mark.timeout(60)
@pytest.mark.parametrize("headers_too", [False, True], ids=["dripping-body", "dripping-headers"])
def test_a_dripping_answer_ends_at_the_deadline(settings, headers_too):
    settings.CONNECTORS_HTTP_TIMEOUT_SECONDS = 3
    with stub_provider() as stub:
        stub.answer(USERINFO, Answer(body=DRIP, drip_seconds=2, drip_headers=headers_too))
        with pytest.raises(http.OutboundError) as error:
            http.request("GET", stub.url + USERINFO)
        assert error.value.code == "timeout" and error.value.transient
        assert wait_until(lambda: stub.holding() == 0)  # our side closed the connection


@pytest.mark.timeout(180)
def test_a_dripping_provider_holds_at_most_its_slots_and_other_tenants_are_served(live, oidc, unique, tmp_path):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_account=f"drip-{unique}")
    assert browser.connect(key).status_code == 302
    client, member = signed_in(live.tenant("acme"), "member@acme.test")
    token = obtain_tokens(member, client, scope="connections")["access_token"]
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",
        "CONNECTORS_HTTP_TIMEOUT_SECONDS": "8",
        "CONNECTORS_PROVIDER_CONCURRENCY": "2",
        "CONNECTORS_PROVIDER_QUEUE_SECONDS": "0.5",
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:config.gunicorn", "config.wsgi"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "--log-level", "warning"]
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    same_host = {"Host": live.url.removeprefix("http://")}  # the platform token's audience names this host
    order = itertools.count()
    try:
        assert wait_until_up(f"{base}/t/acme/healthz"), "gunicorn did not start"
        with stub_provider() as stub, ThreadPoolExecutor(max_workers=10) as pool:
            stub.answer(USERINFO, Answer(body=DRIP, drip_seconds=2))
            with schema_context("acme"):
                Provider.objects.filter(key=key).update(userinfo_endpoint=stub.url + USERINFO)

            def one(_: int) -> tuple[int, dict]:
                response = call(f"{base}/t/acme/mcp", token, "connector_profile", {"provider": key}, headers=same_host)
                assert response.status_code == 200, response.text
                return next(order), response.json()["result"]

            calls = [pool.submit(one, i) for i in range(10)]
            assert wait_until(lambda: stub.holding() >= 2), "the drip calls did not start"
            # meanwhile another tenant is served by the same worker, while both drip calls are held
            other = httpx.get(f"{base}/t/globex/healthz", timeout=30)
            assert other.status_code == 200
            assert stub.holding() == 2
            assert stub.hits[USERINFO] == 2  # the eight others never reached the provider
            results = [c.result(timeout=60) for c in calls]
    finally:
        stop_process(server)
        log.close()
    reasons = Counter(r["structuredContent"]["reason"] for _, r in results)
    assert reasons == {"provider_busy": 8, "timeout": 2}, reasons
    assert all(r["isError"] and r["structuredContent"]["class"] == "CONNECTOR_UNAVAILABLE" for _, r in results)
    assert all(r["structuredContent"]["retryable"] for _, r in results)
    # refused at once: every refusal came back before either call in flight reached its deadline
    busy = [n for n, r in results if r["structuredContent"]["reason"] == "provider_busy"]
    timed_out = [n for n, r in results if r["structuredContent"]["reason"] == "timeout"]
    assert max(busy) < min(timed_out), results
    with schema_context("acme"):
        assert Provider.objects.get(key=key).accounts.get().status == "active"
