"""The proactive refresh for real, with short-lived tokens: a Celery worker and beat (the schedule as
shipped: ``connectors.refresh_expiring`` every 60 s, with its jitter) against the npm oidc-provider
(tests/node_oidc) issuing access tokens that live ``--ttl`` seconds, one connected account in the
tenant ``lifetime``, for ``--minutes`` minutes, no tool call. Prints the worker's job lines for that
tenant and the refreshes the provider counted for the account: about one per half lifetime rounded
up to the next job run (90 s tokens: due after 45 s, refreshed every 60-120 s), never a loop.

Run: ``.venv/bin/python bench/refresh_lifetime.py [--minutes 10] [--ttl 90]`` (the database and broker
the environment names, else the embedded PostgreSQL and the filesystem broker under var/; needs
``npm ci`` in tests/node_oidc)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import setup_django  # noqa: E402
from probe.ready import stop_process  # noqa: E402

SLUG = "lifetime"
EMAIL = "member@lifetime.example"
CLIENT_ID = "lifetime-bench"
CLIENT_SECRET = "lifetime-bench-secret"  # a loopback test provider's client
NODE_DIR = ROOT / "tests" / "node_oidc"


def start_provider(ttl: int) -> tuple[subprocess.Popen, str]:
    clients = [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": ["http://127.0.0.1:8000/t/lifetime/connections/callback/"],
            "access_ttl": ttl,
        }
    ]
    process = subprocess.Popen(
        [shutil.which("node") or "node", "server.mjs"],
        cwd=NODE_DIR,
        env={**os.environ, "CLIENTS": json.dumps(clients)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return process, json.loads(process.stdout.readline())["issuer"]


def connect_one_account(issuer: str, ttl: int) -> str:
    """The tenant, its member, the provider and one account connected just now; returns the
    account's name at the provider."""
    import httpx
    from django_tenants.utils import schema_context

    from accounts.models import User
    from connectors import clock
    from connectors.models import ConnectedAccount, Credential, Provider
    from connectors.services import add_provider
    from tenants.models import Tenant
    from tenants.services import add_user, create_tenant

    if not Tenant.objects.filter(schema_name=SLUG).exists():
        create_tenant(slug=SLUG, name="Refresh lifetime run")
    add_user(slug=SLUG, email=EMAIL, password=uuid.uuid4().hex, role="member")
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    params = {"client_id": CLIENT_ID, "count": 1, "prefix": prefix}
    (minted,) = httpx.post(f"{issuer}/_test/mint", params=params, timeout=30).json()
    with schema_context(SLUG):
        ConnectedAccount.objects.all().delete()
        Provider.objects.all().delete()
        add_provider(key="oidc", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, issuer=issuer, scopes=["openid"])
        now = clock.now()
        account = ConnectedAccount.objects.create(
            user=User.objects.get(email=EMAIL),
            provider=Provider.objects.get(key="oidc"),
            token_issued_at=now,
            token_lifetime_seconds=ttl,
            expires_at=now + timedelta(seconds=ttl),
        )
        refresh_token = minted["refresh_token"]
        Credential.objects.create(account=account, access_token="issued-at-connect", refresh_token=refresh_token)
    return minted["account"]


def celery(kind: str, log: Path, *args: str) -> subprocess.Popen:
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", kind, *args],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)},
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--ttl", type=int, default=90)
    args = parser.parse_args()
    setup_django()
    import httpx
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    row = PeriodicTask.objects.get(task="connectors.refresh_expiring")
    print(f"schedule: {row.task} every {row.interval.every} {row.interval.period}, enabled={row.enabled}")
    provider, issuer = start_provider(args.ttl)
    out = Path(tempfile.mkdtemp(prefix="refresh-lifetime-"))
    try:
        upstream_account = connect_one_account(issuer, args.ttl)
        app.control.purge()
        name = f"lifetime-{os.getpid()}@bench"
        worker = celery("worker", out / "worker.log", "--pool", "solo", "-n", name, "-l", "info")
        beat = celery(
            "beat", out / "beat.log", "-S", "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile", str(out / "beat.pid"), "-l", "info",
        )  # fmt: skip
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(60)
                counted = httpx.get(f"{issuer}/_test/stats", timeout=10).json()["accounts"].get(upstream_account, 0)
                print(f"{(time.monotonic() - started) / 60:4.1f} min: {counted} refreshes at the provider", flush=True)
        finally:
            stop_process(beat)
            stop_process(worker)
        stats = httpx.get(f"{issuer}/_test/stats", timeout=10).json()
    finally:
        provider.terminate()
        provider.wait(timeout=10)
    lines = [line for line in (out / "worker.log").read_text().splitlines() if f"tenant={SLUG} " in line]
    print(f"\nworker job lines for tenant={SLUG} ({out / 'worker.log'}):")
    for line in lines:
        print(line)
    refreshes = stats["accounts"].get(upstream_account, 0)
    print(
        f"\n{args.ttl} s tokens, one account, {args.minutes:g} minutes, no tool call: {refreshes} refreshes at the "
        f"provider ({refreshes / args.minutes * 60:.0f} per hour; at most one per half lifetime would be "
        f"{args.minutes * 60 / (args.ttl / 2):.0f}); all token requests at the provider: {stats['token_requests']}"
    )


if __name__ == "__main__":
    main()
