"""A code exchange and a refresh at the token endpoint (medians) and the statements each runs, for a
public client (PKCE, ``none``, what MCP clients register) and a confidential one (``client_secret_basic``
and PKCE), against gunicorn (2 sync workers) on loopback, one client at a time. Each round gets a fresh
code (consent remembered: /authorize redirects) and times only the POST to /token; then a refresh-token
chain, timing each rotation. One ``httpx.Client`` makes every request (creating one per request cost
25-35 ms: the benchmark timed itself). ``--before TREE``: a second gunicorn serving another checkout on
``BENCH_PORT + 1``, rounds interleaved. Statements are counted in process (the second request of each
kind) in each tree. ``--profile-only N``: cProfile of N exchanges and refreshes in process."""

from __future__ import annotations

import os
import re
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import PORT, ROOT, bench_parser, child, gunicorn, load, median_ms, profiled, setup_django
from probe import oauth_flow
from probe.oauth_flow import authorization_code

KINDS = ("public", "confidential")


def register(http, tenant: oauth_flow.Tenant, kind: str) -> oauth_flow.Client:
    method = "none" if kind == "public" else "client_secret_basic"
    return oauth_flow.register(tenant, http=http, client_name=f"bench {kind}", token_endpoint_auth_method=method)


def exchange(http, client: oauth_flow.Client, code_and_verifier: tuple[str, str]) -> dict:
    return _ok(oauth_flow.exchange(client, *code_and_verifier, http=http))


def refresh(http, client: oauth_flow.Client, token: str) -> dict:
    return _ok(oauth_flow.refresh(client, token, http=http))


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


class Side:
    """One server (this tree or the ``--before`` one) or, with ``http``, the WSGI application in this
    process: its clients (approved once each), their refresh-token chains, and the samples."""

    def __init__(self, name: str, base: str, http=None) -> None:
        import httpx

        self.name, self.samples = name, {}
        self.http = http or httpx.Client(timeout=30)
        tenant = oauth_flow.Tenant(f"{base}/t/acme", "acme")
        password = os.environ["DEMO_MEMBER_PASSWORD"]
        self.browser = oauth_flow.Browser(tenant, "member@acme.example", password, *([http] if http else []))
        self.browser.login()
        self.clients = {kind: register(self.http, tenant, kind) for kind in KINDS}
        self.chains = {
            kind: exchange(self.http, c, authorization_code(self.browser, c))["refresh_token"]
            for kind, c in self.clients.items()
        }

    def timed(self, key: str, call):
        started = time.perf_counter()
        result = call()
        self.samples.setdefault(key, []).append(time.perf_counter() - started)
        return result

    def exchange_round(self) -> None:
        for kind, client in self.clients.items():
            got = self.timed("authorize", lambda c=client: authorization_code(self.browser, c))
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
        got = authorization_code(side.browser, client)  # the authorize step is not counted
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
    codes = [authorization_code(side.browser, client) for _ in range(rounds)]

    def work() -> None:
        for got in codes:
            exchange(side.http, client, got)
            side.chains["public"] = refresh(side.http, client, side.chains["public"])["refresh_token"]

    print(f"{rounds} exchanges + {rounds} refreshes, in-process")
    print(profiled(work, top=25, where=r"oauth|oauthlib|ratelimit|audit|psycopg.*wait"))


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
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
    trees = [("after", ROOT, PORT)] + ([("before", args.before.resolve(), PORT + 1)] if args.before else [])
    queries = {name: child("oauth-tokens", "--queries-only", code=tree) for name, tree, _ in trees}
    with ExitStack() as stack:
        sides = [Side(name, stack.enter_context(gunicorn(p, root=tree))) for name, tree, p in trees]
        for step in ("exchange_round", "refresh_round"):
            for _ in range(args.rounds):  # interleaved: both trees under the same load
                for side in sides:
                    getattr(side, step)()
    report(args, sides, queries)


def report(args, sides: list[Side], queries: dict) -> None:
    print(
        f"\n{args.rounds} rounds, gunicorn 2 sync workers per tree, loopback, one client at a time (latency, "
        f"not load); {load()} after the run\n"
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
