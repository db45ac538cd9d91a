"""A code exchange and a refresh at the token endpoint (medians) and the statements each runs, for a
public client (PKCE, ``none``, what MCP clients register) and a confidential one (``client_secret_basic``
and PKCE), against gunicorn (2 sync workers) on loopback, one client at a time. Each round gets a fresh
code (consent remembered: /authorize redirects) and times only the POST to /token; then a refresh-token
chain, timing each rotation. One ``httpx.Client`` makes every request (creating one per request cost
25-35 ms: the benchmark timed itself). ``--before TREE``: a second gunicorn serving another checkout on
``BENCH_PORT + 1``, rounds interleaved. Statements are counted in process (the second request of each
kind) in each tree. ``--profile-only N``: cProfile of N exchanges and refreshes in process."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, child, gunicorn, median_ms, profiled, setup_django

KINDS = ("public", "confidential")


def register(http, tenant, kind: str):
    from probe.oauth_flow import REDIRECT_URI, Client

    body = {
        "client_name": f"bench {kind}",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none" if kind == "public" else "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "application_type": "native",
    }
    response = http.post(tenant.url("register/"), json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Client(tenant, data["client_id"], data.get("client_secret"), REDIRECT_URI)


def post_token(http, client, **data: str):
    auth = (client.client_id, client.client_secret) if client.client_secret else None
    response = http.post(client.tenant.url("token/"), data={"client_id": client.client_id, **data}, auth=auth)
    assert response.status_code == 200, response.text
    return response.json()


def code(browser, client) -> tuple[str, str]:
    from probe.oauth_flow import authorize_url, pkce_pair, redirect_params

    verifier, challenge = pkce_pair()
    url = authorize_url(client, scope="crm.read", challenge=challenge)
    return redirect_params(browser.authorize(url))["code"], verifier


def exchange(http, client, code_and_verifier: tuple[str, str]) -> dict:
    got, verifier = code_and_verifier
    grant = {"grant_type": "authorization_code", "redirect_uri": client.redirect_uri}
    return post_token(http, client, **grant, code=got, code_verifier=verifier)


def refresh(http, client, token: str) -> dict:
    return post_token(http, client, grant_type="refresh_token", refresh_token=token)


class Side:
    """One server (this tree or the ``--before`` one) or, with ``http``, the WSGI application in this
    process: its clients (approved once each), their refresh-token chains, and the samples."""

    def __init__(self, name: str, base: str, http=None) -> None:
        import httpx

        from probe.oauth_flow import Browser, Tenant

        self.name, self.samples = name, {}
        self.http = http or httpx.Client(timeout=30)
        tenant = Tenant(f"{base}/t/acme", "acme")
        password = os.environ["DEMO_MEMBER_PASSWORD"]
        self.browser = Browser(tenant, "member@acme.example", password, *([http] if http else []))
        self.browser.login()
        self.clients = {kind: register(self.http, tenant, kind) for kind in KINDS}
        self.chains = {
            kind: exchange(self.http, c, code(self.browser, c))["refresh_token"] for kind, c in self.clients.items()
        }

    def timed(self, key: str, call):
        started = time.perf_counter()
        result = call()
        self.samples.setdefault(key, []).append(time.perf_counter() - started)
        return result

    def exchange_round(self) -> None:
        for kind, client in self.clients.items():
            got = self.timed("authorize", lambda c=client: code(self.browser, c))
            self.timed(f"exchange {kind}", lambda c=client, g=got: exchange(self.http, c, g))

    def refresh_round(self) -> None:
        for kind, client in self.clients.items():
            new = self.timed(f"refresh {kind}", lambda c=client, k=kind: refresh(self.http, c, self.chains[k]))
            self.chains[kind] = new["refresh_token"]


def in_process_side() -> Side:
    import httpx
    from django.core.wsgi import get_wsgi_application

    transport = httpx.WSGITransport(app=get_wsgi_application())
    return Side("in process", "http://127.0.0.1:8000", http=httpx.Client(transport=transport, follow_redirects=False))


def count_queries() -> dict[str, list[str]]:
    """The SQL of the second exchange and the second refresh of each kind of client, in process."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    side, statements = in_process_side(), {}
    for kind, client in side.clients.items():
        side.chains[kind] = refresh(side.http, client, side.chains[kind])["refresh_token"]  # the first one
        got = code(side.browser, client)  # the authorize step is not counted
        with CaptureQueriesContext(connection) as exchanged:
            exchange(side.http, client, got)
        with CaptureQueriesContext(connection) as refreshed:
            refresh(side.http, client, side.chains[kind])
        statements[f"exchange {kind}"] = [q["sql"] for q in exchanged.captured_queries]
        statements[f"refresh {kind}"] = [q["sql"] for q in refreshed.captured_queries]
    return statements


def profile(rounds: int) -> None:
    side = in_process_side()
    client = side.clients["public"]
    codes = [code(side.browser, client) for _ in range(rounds)]

    def work() -> None:
        for got in codes:
            exchange(side.http, client, got)
            side.chains["public"] = refresh(side.http, client, side.chains["public"])["refresh_token"]

    print(f"{rounds} exchanges + {rounds} refreshes, in-process")
    print(profiled(work, top=25, where=r"oauth|oauthlib|ratelimit|audit|psycopg.*wait"))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench oauth-tokens", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--before", type=Path, help="another worktree of the project, run side by side")
    parser.add_argument("--queries-only", action="store_true", help="the statements of this tree, as JSON")
    parser.add_argument("--profile-only", type=int, metavar="ROUNDS", help="cProfile this tree in-process, then stop")
    parser.add_argument("--show-sql", action="store_true", help="print every statement counted")
    args = parser.parse_args(argv)
    # hundreds of exchanges and a few registrations from one address: lift the rate limits
    for limit in ("OAUTH_TOKEN_RATE_LIMIT", "OAUTH_TOKEN_CLIENT_RATE_LIMIT", "OAUTH_DCR_RATE_LIMIT"):
        os.environ.setdefault(limit, "1000000")
    setup_django()
    if args.queries_only:
        import json

        print(json.dumps(count_queries()))
        return
    if args.profile_only:
        return profile(args.profile_only)
    port = int(os.environ.get("BENCH_PORT", "8766"))
    trees = [("after", ROOT, port)] + ([("before", args.before.resolve(), port + 1)] if args.before else [])
    queries = {name: child("oauth-tokens", "--queries-only", code=tree) for name, tree, _ in trees}
    with ExitStack() as stack:
        sides = [Side(name, stack.enter_context(gunicorn(p, root=tree))) for name, tree, p in trees]
        for step in ("exchange_round", "refresh_round"):
            for _ in range(args.rounds):  # interleaved: both trees under the same load
                for side in sides:
                    getattr(side, step)()
    report(args, sides, queries)


def report(args, sides: list[Side], queries: dict) -> None:
    load = os.getloadavg()
    print(
        f"\n{args.rounds} rounds, gunicorn 2 sync workers per tree, loopback, one client at a time (latency, "
        f"not load); load average after the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    header = f"{'step':28}" + "".join(f"{s.name + ' median':>15}{s.name + ' p90':>12}{'queries':>9}" for s in sides)
    print(header + (f"{'after/before':>14}" if len(sides) == 2 else ""))
    for key in ["authorize"] + [f"{step} {kind}" for step in ("exchange", "refresh") for kind in KINDS]:
        row = f"{key:28}"
        for side in sides:
            found = side.samples[key]
            count = len(queries[side.name][key]) if key in queries[side.name] else ""
            row += f"{median_ms(found):12.1f} ms{statistics.quantiles(found, n=10)[-1] * 1000:9.1f} ms{count:>9}"
        if len(sides) == 2:
            row += f"{median_ms(sides[0].samples[key]) / median_ms(sides[1].samples[key]):14.2f}"
        print(row)
    for name, found in queries.items() if args.show_sql else ():
        for key, statements in found.items():
            print(f"\n{name} {key}: {len(statements)} statements")
            for sql in statements:  # long literals (codes, checksums, ciphertext) masked
                masked = re.sub(r"'[^']{16,}'", "'…'", sql)
                print(f"  {masked[:160]}")
