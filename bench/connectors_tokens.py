"""Connector token access in process (what a tool handler pays for ``tokens.access_token``): cached and
refreshing latency, and refreshes per second from one caller and from 8 threads, against the npm
oidc-provider on loopback (tests/node_oidc; ``npm ci`` there first). Creates bench users and a provider
``bench-oidc`` in the demo tenant acme."""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urljoin

from bench.common import bench_parser, median_ms, oidc_provider, p95_ms, seconds, setup_django

CLIENT_ID, CLIENT_SECRET = "bench-connector", "bench-only-secret"
REDIRECT = "http://127.0.0.1:9/t/acme/connections/callback/"  # never contacted: the callback runs in-process


def connect(provider, user_id: int, account_name: str) -> None:
    import httpx

    from connectors.services import CallbackParams, complete_connect, start_connect
    from probe.oauth_flow import query_params

    url = start_connect(user_id=user_id, provider=provider, redirect_uri=REDIRECT)
    with httpx.Client(follow_redirects=False, cookies={"test_account": account_name}) as browser:
        while not url.startswith(REDIRECT):
            url = urljoin(url, browser.get(url).headers["location"])
    query = query_params(url)
    complete_connect(
        params=CallbackParams(query["state"], query["code"], "", "", query.get("iss", "")), user_id=user_id
    )


def ms(values: list[float]) -> str:
    return f"median {median_ms(values):7.2f} ms   p95 {p95_ms(values):7.2f} ms   (n={len(values)})"


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cached-calls", type=int, default=2000)
    args = parser.parse_args(argv)
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from connectors.models import ConnectedAccount, Provider
    from connectors.services import add_provider
    from connectors.tokens import access_token

    clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT]}]
    with oidc_provider({"CLIENTS": json.dumps(clients)}) as issuer, schema_context("acme"):
        Provider.objects.filter(key="bench-oidc").delete()
        scopes = ["openid", "offline_access"]
        add_provider(key="bench-oidc", issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scopes=scopes)
        Provider.objects.filter(key="bench-oidc").update(extra_authorize_params={"prompt": "consent"})
        provider = Provider.objects.get(key="bench-oidc")
        users = [
            get_user_model().objects.get_or_create(email=f"bench{i}@acme.example")[0] for i in range(args.accounts)
        ]
        for index, user in enumerate(users):
            connect(provider, user.pk, f"bench{index}")
        ids = [u.pk for u in users]

        def expire_all() -> None:
            with schema_context("acme"):
                expired = timezone.now() - timedelta(seconds=1)
                ConnectedAccount.objects.filter(provider=provider).update(expires_at=expired)

        def timed(user_id: int) -> float:
            return seconds(access_token, user_id=user_id, provider_key="bench-oidc")

        def in_thread(user_id: int) -> None:
            try:
                with schema_context("acme"):
                    access_token(user_id=user_id, provider_key="bench-oidc")
            finally:
                connection.close()

        cached = [timed(ids[0]) for _ in range(args.cached_calls)]
        refreshing, sequential, parallel = [], [], []
        for _ in range(args.rounds):
            expire_all()
            began = time.perf_counter()
            refreshing += [timed(user_id) for user_id in ids]
            sequential.append(len(ids) / (time.perf_counter() - began))
        for _ in range(args.rounds):
            expire_all()
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(in_thread, ids))
            parallel.append(len(ids) / (time.perf_counter() - began))

    print(f"connector token access, in-process, oidc-provider on loopback, {args.accounts} accounts")
    print(f"  cached (valid token, no lock)      {ms(cached)}")
    print(f"  refreshing (lock, 2 commits, HTTP) {ms(refreshing)}")
    print(f"  refreshes/s, one caller            median {statistics.median(sequential):7.1f}")
    print(f"  refreshes/s, 8 threads             median {statistics.median(parallel):7.1f}")
