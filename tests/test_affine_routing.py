"""Tenant-affine routing: Debian's HAProxy, configured from ``config/haproxy.cfg.template`` by
``config/haproxy.py`` (as ``make run-affine`` does), in front of two real gunicorn groups on loopback
over the test database. Each tenant's requests reach one group (the ``X-Served-By`` header HAProxy
adds names it), tenants spread over both, and when a group is killed its tenants are answered, with
the right data, by the other: first by HAProxy's redispatch of a refused connection, then because
the health check has marked the group down. Nothing but warm caches depends on the affinity.

The tokens are issued by the live server's OAuth flow for the live server's URL, so the MCP calls
through HAProxy carry that host (the audience); the route is chosen by the ``/t/<slug>/`` prefix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django_tenants.utils import schema_context

from config.haproxy import group_name, haproxy, render, server_states, wait_for_states
from crm.models import Contact
from probe.ready import stop_process
from tests.connectors.test_two_workers import free_port
from tests.database import database_url
from tests.mcp_raw import call
from tests.support.mcp import token_for

ROOT = Path(__file__).resolve().parent.parent
# a few real tenants and made-up slugs: the route depends on the slug only (an unknown tenant's 404 is
# answered by its group like any page)
SLUGS = ["acme", "globex", *(f"tenant-{n:02d}" for n in range(30))]


@dataclass
class Affine:
    url: str
    stats: str
    groups: dict[str, subprocess.Popen]

    def served_by(self, slug: str) -> str:
        response = httpx.get(f"{self.url}/t/{slug}/healthz", timeout=20)
        assert response.status_code == (404 if slug.startswith("tenant-") else 200), response.text[:200]
        return response.headers["X-Served-By"]


def _wait_answering(url: str) -> None:
    """Until ``url`` answers with any status (a group whose health check fails still answers)."""
    for _ in range(300):
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@contextmanager
def _affine(group_env: dict[str, str], expected: str, check_interval: str = "300ms") -> Iterator[Affine]:
    """Two gunicorn groups (one worker each) behind HAProxy, once both groups are ``expected``."""
    ports = [free_port(), free_port()]
    env = {**os.environ, "DATABASE_URL": database_url(), "CONN_MAX_AGE": "0", **group_env}
    groups = {}
    for index, port in enumerate(ports):
        command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
        command += ["--workers", "1", "--log-level", "warning"]
        groups[group_name(index)] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        for port in ports:
            _wait_answering(f"http://127.0.0.1:{port}/t/acme/healthz")
        bind, stats = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        config = render(bind, ports, stats_bind=stats, check_interval=check_interval)
        with haproxy(config, wait_for=f"http://{stats}/"):
            states = wait_for_states(f"http://{stats}", dict.fromkeys(groups, expected))
            assert states == dict.fromkeys(groups, expected), states
            yield Affine(f"http://{bind}", f"http://{stats}", groups)
    finally:
        for process in groups.values():
            stop_process(process)


@pytest.fixture
def affine(live_server_url) -> Iterator[Affine]:
    with _affine({}, "UP") as running:
        yield running


@pytest.fixture
def affine_without_broker(live_server_url) -> Iterator[Affine]:
    """Both groups' broker refuses connections, so every /healthz answers 503 and both are down."""
    # each check then takes ~2 s (the broker's timeout) of the group's one worker: not every 300 ms
    with _affine({"CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}, "DOWN", "1s") as running:
        yield running


def _routes(affine: Affine) -> dict[str, str]:
    return {slug: affine.served_by(slug) for slug in SLUGS}


def _contact(slug: str) -> tuple[int, str]:
    with schema_context(slug):
        contact = Contact.objects.order_by("pk").first()
    return contact.pk, contact.name


def _read_contact(affine: Affine, live, slug: str, token: str, contact_id: int) -> tuple[str, str]:
    """``crm_get_contact`` through HAProxy: the contact's name and the group that answered."""
    response = call(
        f"{affine.url}/t/{slug}/mcp",
        token,
        "crm_get_contact",
        {"contact_id": contact_id},
        headers={"Host": urlsplit(live.url).netloc},
    )
    assert response.status_code == 200, response.text[:300]
    result = response.json()["result"]
    assert result["isError"] is False, result
    return json.loads(result["content"][0]["text"])["name"], response.headers["X-Served-By"]


def test_each_tenant_stays_on_one_group_and_tenants_spread_over_both(affine):
    first = _routes(affine)
    for _ in range(3):
        assert _routes(affine) == first
    counts = {name: list(first.values()).count(name) for name in affine.groups}
    assert min(counts.values()) >= len(SLUGS) // 4, counts  # both groups take a real share


def test_a_killed_group_s_tenants_are_answered_by_the_other_with_their_data(affine, live):
    routes = _routes(affine)
    victim = routes["acme"]
    (survivor,) = set(affine.groups) - {victim}
    tokens = {slug: token_for(live, slug, f"member@{slug}.test")[0] for slug in ("acme", "globex")}
    contacts = {slug: _contact(slug) for slug in tokens}
    for slug, token in tokens.items():
        assert _read_contact(affine, live, slug, token, contacts[slug][0]) == (contacts[slug][1], routes[slug])

    stop_process(affine.groups[victim])
    # before the health check notices: the refused connection is redispatched to the other group
    for slug, token in tokens.items():
        assert _read_contact(affine, live, slug, token, contacts[slug][0]) == (contacts[slug][1], survivor)

    states = wait_for_states(affine.stats, {victim: "DOWN"})
    assert states == {victim: "DOWN", survivor: "UP"}
    after = _routes(affine)
    assert set(after.values()) == {survivor}
    # consistent hashing: the survivor's own tenants did not move
    assert {s for s, g in routes.items() if g == survivor} <= {s for s, g in after.items() if g == survivor}
    for slug, token in tokens.items():
        assert _read_contact(affine, live, slug, token, contacts[slug][0]) == (contacts[slug][1], survivor)
    assert server_states(affine.stats)[victim] == "DOWN"


def test_when_every_group_fails_its_check_the_calls_are_still_answered(affine_without_broker, live):
    """/healthz also checks the shared broker: its outage marks every group down, and the unchecked
    backups keep the calls (which do not need the broker) answered, each tenant still on one group."""
    token = token_for(live, "acme", "member@acme.test")[0]
    contact_id, name = _contact("acme")
    answers = {_read_contact(affine_without_broker, live, "acme", token, contact_id) for _ in range(5)}
    assert len(answers) == 1
    ((answered_name, group),) = answers
    assert answered_name == name
    assert group.endswith("-unchecked")
