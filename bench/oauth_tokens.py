"""Cost of an authorization-code exchange and of a refresh at the token endpoint (median).

    .venv/bin/python bench/oauth_tokens.py [--rounds 200]

Against gunicorn on loopback: registers a client, signs the demo member in once and approves once;
then each round gets a fresh code (consent is remembered, so /authorize answers with a redirect) and
times only the POST to /token; then walks a refresh-token chain, timing each rotation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import gunicorn, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    setup_django()
    from probe.oauth_flow import (
        Browser,
        Tenant,
        authorize_url,
        exchange,
        obtain_tokens,
        pkce_pair,
        redirect_params,
        refresh,
        register,
    )

    with gunicorn(int(os.environ.get("BENCH_PORT", "8766"))) as base:
        tenant = Tenant(f"{base}/t/acme", "acme")
        client = register(tenant)
        browser = Browser(tenant, "member@acme.example", password=os.environ["DEMO_MEMBER_PASSWORD"])
        browser.login()
        tokens = obtain_tokens(browser, client)  # approves once

        exchanges, authorizes = [], []
        for _ in range(args.rounds):
            verifier, challenge = pkce_pair()
            start = time.perf_counter()
            url = authorize_url(client, scope="crm.read", challenge=challenge)
            code = redirect_params(browser.http.get(url))["code"]
            authorizes.append(time.perf_counter() - start)
            start = time.perf_counter()
            response = exchange(client, code, verifier)
            exchanges.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text

        refreshes = []
        current = tokens["refresh_token"]
        for _ in range(args.rounds):
            start = time.perf_counter()
            response = refresh(client, current)
            refreshes.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
            current = response.json()["refresh_token"]

    def ms(samples: list[float]) -> str:
        p90 = statistics.quantiles(samples, n=10)[-1]
        return f"median {statistics.median(samples) * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms"

    print(f"\n{args.rounds} rounds, gunicorn 2 sync workers, loopback, one client at a time (latency, not load)")
    print(f"  authorize (remembered consent -> code): {ms(authorizes)}")
    print(f"  token exchange (code + PKCE):           {ms(exchanges)}")
    print(f"  refresh (rotation, reuse detection):    {ms(refreshes)}")


if __name__ == "__main__":
    main()
