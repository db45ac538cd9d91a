"""The proactive refresh for real, with short-lived tokens: a Celery worker and beat (the schedule as
shipped: ``connectors.refresh_expiring`` every 60 s, with its jitter) against the npm oidc-provider
(tests/node_oidc, ``npm ci`` there first) issuing access tokens that live ``--ttl`` seconds, one
connected account in the tenant ``lifetime``, for ``--minutes`` minutes, no tool call. Prints the
worker's job lines for that tenant and the refreshes the provider counted for the account: about one
per half lifetime rounded up to the next job run (90 s tokens: refreshed every 60-120 s), never a loop."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from bench.common import bench_parser, celery, get_json, oidc_provider, setup_django
from probe.ready import stop_process

SLUG, EMAIL = "lifetime", "member@lifetime.example"
CLIENT_ID, CLIENT_SECRET = "lifetime-bench", "lifetime-bench-secret"  # a loopback test provider's client


def connect_one_account(issuer: str, ttl: int) -> str:
    """The tenant, its member, the provider and one account connected just now: the account's name at
    the provider."""
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
    query = f"client_id={CLIENT_ID}&count=1&prefix=run-{uuid.uuid4().hex[:8]}"
    (minted,) = get_json(f"{issuer}/_test/mint?{query}", "POST")
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
        Credential.objects.create(account=account, access_token="at-connect", refresh_token=minted["refresh_token"])
    return minted["account"]


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--ttl", type=int, default=90)
    args = parser.parse_args(argv)
    setup_django()
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    row = PeriodicTask.objects.get(task="connectors.refresh_expiring")
    print(f"schedule: {row.task} every {row.interval.every} {row.interval.period}, enabled={row.enabled}")
    redirect = f"http://127.0.0.1:8000/t/{SLUG}/connections/callback/"
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [redirect],
        "access_ttl": args.ttl,
    }
    out = Path(tempfile.mkdtemp(prefix="refresh-lifetime-"))
    with oidc_provider({"CLIENTS": json.dumps([client])}) as issuer:
        upstream = connect_one_account(issuer, args.ttl)
        app.control.purge()
        info = {"LOG_LEVEL": "INFO"}
        worker_args = ("--pool", "solo", "-n", f"lifetime-{os.getpid()}@bench", "-l", "info")
        worker = celery("worker", *worker_args, env=info, log=out / "worker.log")
        beat_args = ("-S", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile", str(out / "beat.pid"))
        beat = celery("beat", *beat_args, "-l", "info", env=info, log=out / "beat.log")
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(min(60, args.minutes * 60))
                counted = get_json(f"{issuer}/_test/stats")["accounts"].get(upstream, 0)
                print(f"{(time.monotonic() - started) / 60:4.1f} min: {counted} refreshes at the provider", flush=True)
        finally:
            stop_process(beat)
            stop_process(worker)
        stats = get_json(f"{issuer}/_test/stats")
    print(f"\nworker job lines for tenant={SLUG} ({out / 'worker.log'}):")
    for line in (out / "worker.log").read_text().splitlines():
        if f"tenant={SLUG} " in line:
            print(line)
    refreshes = stats["accounts"].get(upstream, 0)
    print(
        f"\n{args.ttl} s tokens, one account, {args.minutes:g} minutes, no tool call: {refreshes} refreshes at the "
        f"provider ({refreshes / args.minutes * 60:.0f} per hour; at most one per half lifetime would be "
        f"{args.minutes * 60 / (args.ttl / 2):.0f}); all token requests at the provider: {stats['token_requests']}"
    )
