"""Connector token access: on-demand latency (cached and refreshing) and refreshes per second against
the npm oidc-provider on loopback (tests/node_oidc; run `npm ci` there first).

In-process (no HTTP in front of the service): what a tool handler pays for ``tokens.access_token``.
Uses DATABASE_URL (or the embedded PostgreSQL) and the demo tenant ``acme``; creates bench users and
a provider ``bench-oidc`` there. ``python bench/connectors_tokens.py [--accounts 20] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, setup_django
from probe.oauth_flow import query_params

CLIENT_ID, CLIENT_SECRET = "bench-connector", "bench-only-secret"
REDIRECT = "http://127.0.0.1:9/t/acme/connections/callback/"  # never contacted: the callback runs in-process


def start_provider() -> tuple[subprocess.Popen, str]:
    clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT]}]
    process = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=ROOT / "tests" / "node_oidc",
        env={**os.environ, "CLIENTS": json.dumps(clients)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return process, json.loads(process.stdout.readline())["issuer"]


def connect(provider, user_id: int, account_name: str) -> None:
    import httpx

    from connectors.services import CallbackParams, complete_connect, start_connect

    url = start_connect(user_id=user_id, provider=provider, redirect_uri=REDIRECT)
    with httpx.Client(follow_redirects=False, cookies={"test_account": account_name}) as browser:
        while not url.startswith(REDIRECT):
            url = urljoin(url, browser.get(url).headers["location"])
    query = query_params(url)
    params = CallbackParams(query["state"], query["code"], "", "", query.get("iss", ""))
    complete_connect(params=params, user_id=user_id)


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms   (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cached-calls", type=int, default=2000)
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from connectors.models import ConnectedAccount, Provider
    from connectors.services import add_provider
    from connectors.tokens import access_token

    process, issuer = start_provider()
    try:
        with schema_context("acme"):
            Provider.objects.filter(key="bench-oidc").delete()
            add_provider(
                key="bench-oidc",
                issuer=issuer,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                scopes=["openid", "offline_access"],
            )
            provider = Provider.objects.get(key="bench-oidc")
            Provider.objects.filter(pk=provider.pk).update(extra_authorize_params={"prompt": "consent"})
            provider.refresh_from_db()
            users = [
                get_user_model().objects.get_or_create(email=f"bench{i}@acme.example")[0] for i in range(args.accounts)
            ]
            for index, user in enumerate(users):
                connect(provider, user.pk, f"bench{index}")
            ids = [u.pk for u in users]

            def expire_all() -> None:
                ConnectedAccount.objects.filter(provider=provider).update(
                    expires_at=timezone.now() - timedelta(seconds=1)
                )

            cached = []
            for _ in range(args.cached_calls):
                started = time.perf_counter()
                access_token(user_id=ids[0], provider_key="bench-oidc")
                cached.append(time.perf_counter() - started)

            refreshing = []
            sequential_rates = []
            for _ in range(args.rounds):
                expire_all()
                began = time.perf_counter()
                for user_id in ids:
                    started = time.perf_counter()
                    access_token(user_id=user_id, provider_key="bench-oidc")
                    refreshing.append(time.perf_counter() - started)
                sequential_rates.append(len(ids) / (time.perf_counter() - began))

        def one(user_id: int) -> None:
            try:
                with schema_context("acme"):
                    access_token(user_id=user_id, provider_key="bench-oidc")
            finally:
                connection.close()

        parallel_rates = []
        for _ in range(args.rounds):
            with schema_context("acme"):
                expire_all()
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(one, ids))
            parallel_rates.append(len(ids) / (time.perf_counter() - began))
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"connector token access, in-process, oidc-provider on loopback, {args.accounts} accounts")
    print(f"  cached (valid token, no lock)      {ms(cached)}")
    print(f"  refreshing (lock, 2 commits, HTTP) {ms(refreshing)}")
    print(f"  refreshes/s, one caller            median {statistics.median(sequential_rates):7.1f}")
    print(f"  refreshes/s, 8 threads             median {statistics.median(parallel_rates):7.1f}")


if __name__ == "__main__":
    main()
