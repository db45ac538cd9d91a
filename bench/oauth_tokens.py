"""Cost of an authorization-code exchange and of a refresh at the token endpoint (medians), and the
SQL statements each one runs.

    .venv/bin/python bench/oauth_tokens.py [--rounds 200] [--before ../perf-token-base] [--show-sql]
    .venv/bin/python bench/oauth_tokens.py --profile-only 100      # cProfile in-process (run it in each tree)

Against gunicorn (2 sync workers) on loopback: registers a public client (PKCE,
``token_endpoint_auth_method`` ``none``, what MCP clients register) and a confidential one
(``client_secret_basic``, PKCE as well), signs the demo member in once and approves once; then each
round gets a fresh code (consent is remembered, so /authorize answers with a redirect) and times only
the POST to /token; then walks a refresh-token chain, timing each rotation.

One ``httpx.Client`` makes every request. The script used to call ``httpx.post`` per request, and
creating an ``httpx.Client`` (its SSL context, for an http:// URL too) cost 25-35 ms of the ~87 ms it
reported: the benchmark timed itself. That cost is printed once, for the record.

``--before TREE`` runs a second gunicorn from another worktree of the project (e.g. one of ``main``:
``git worktree add --detach ../perf-token-base main``) on ``BENCH_PORT + 1`` over the same database,
with the same virtualenv, and interleaves its rounds with this tree's, so both are measured under the
same load. The statements are counted in-process (Django's ``CaptureQueriesContext``, the request
through the WSGI app in this process, the second request of each kind: steady state), in each tree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = Path(os.environ.get("BENCH_TREE") or HERE.parent).resolve()
sys.path.insert(0, str(TREE))
from bench.common import gunicorn, setup_django  # noqa: E402

KINDS = ("public", "confidential")


def _register(http, tenant, kind: str):
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


def _post_token(http, client, data: dict):
    auth = (client.client_id, client.client_secret) if client.client_secret else None
    return http.post(client.tenant.url("token/"), data={"client_id": client.client_id, **data}, auth=auth)


def _code(browser, client) -> tuple[str, str]:
    from probe.oauth_flow import authorize_url, pkce_pair, redirect_params

    verifier, challenge = pkce_pair()
    url = authorize_url(client, scope="crm.read", challenge=challenge)
    return redirect_params(browser.authorize(url))["code"], verifier


def _exchange(http, client, code: str, verifier: str):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    return _post_token(http, client, {**data, "code_verifier": verifier})


def _refresh(http, client, refresh_token: str):
    return _post_token(http, client, {"grant_type": "refresh_token", "refresh_token": refresh_token})


class Side:
    """One server (this tree or the ``--before`` one): its clients, browser and samples."""

    def __init__(self, name: str, base: str) -> None:
        import httpx

        from probe.oauth_flow import Browser, Tenant

        self.name = name
        self.http = httpx.Client(timeout=30)
        tenant = Tenant(f"{base}/t/acme", "acme")
        self.browser = Browser(tenant, "member@acme.example", password=os.environ["DEMO_MEMBER_PASSWORD"])
        self.browser.login()
        self.clients = {kind: _register(self.http, tenant, kind) for kind in KINDS}
        self.samples: dict[str, list[float]] = {}
        self.chains: dict[str, str] = {}
        for kind, client in self.clients.items():  # approves once per client
            response = _exchange(self.http, client, *_code(self.browser, client))
            assert response.status_code == 200, response.text
            self.chains[kind] = response.json()["refresh_token"]

    def _timed(self, key: str, call):
        start = time.perf_counter()
        response = call()
        self.samples.setdefault(key, []).append(time.perf_counter() - start)
        assert response.status_code == 200, (self.name, key, response.text)
        return response

    def exchange_round(self) -> None:
        for kind, client in self.clients.items():
            start = time.perf_counter()
            code, verifier = _code(self.browser, client)
            self.samples.setdefault("authorize", []).append(time.perf_counter() - start)
            self._timed(f"exchange {kind}", lambda c=client, k=code, v=verifier: _exchange(self.http, c, k, v))

    def refresh_round(self) -> None:
        for kind, client in self.clients.items():
            response = self._timed(f"refresh {kind}", lambda c=client, k=kind: _refresh(self.http, c, self.chains[k]))
            self.chains[kind] = response.json()["refresh_token"]


def _in_process():
    """An HTTP client on the WSGI application in this process, and the demo member signed in."""
    import httpx
    from django.core.wsgi import get_wsgi_application

    from probe.oauth_flow import Browser, Tenant

    http = httpx.Client(transport=httpx.WSGITransport(app=get_wsgi_application()), follow_redirects=False)
    tenant = Tenant("http://127.0.0.1:8000/t/acme", "acme")
    browser = Browser(tenant, "member@acme.example", password=os.environ["DEMO_MEMBER_PASSWORD"], http=http)
    browser.login()
    return http, tenant, browser


def profile(rounds: int, top: int = 25) -> None:
    """cProfile of ``rounds`` exchanges and refreshes of the public client, in this process
    (``--profile-only``, run in each tree): the top entries by own time and by cumulative time."""
    import cProfile
    import pstats

    http, tenant, browser = _in_process()
    client = _register(http, tenant, "public")
    current = _exchange(http, client, *_code(browser, client)).json()["refresh_token"]
    profiler = cProfile.Profile()
    for _ in range(rounds):
        code, verifier = _code(browser, client)
        profiler.enable()
        response = _exchange(http, client, code, verifier)
        refreshed = _refresh(http, client, current)
        profiler.disable()
        assert response.status_code == 200 and refreshed.status_code == 200, (response.text, refreshed.text)
        current = refreshed.json()["refresh_token"]
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"{rounds} exchanges + {rounds} refreshes, in-process")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"oauth|oauthlib|ratelimit|audit|psycopg.*wait", top)


def count_queries() -> dict[str, list[str]]:
    """The SQL of the second exchange and the second refresh of each kind of client, run through the
    WSGI application in this process (``--queries-only``, run in each tree)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    http, tenant, browser = _in_process()
    statements: dict[str, list[str]] = {}
    for kind in KINDS:
        client = _register(http, tenant, kind)
        for _ in range(2):
            code, verifier = _code(browser, client)
            with CaptureQueriesContext(connection) as exchanged:
                response = _exchange(http, client, code, verifier)
            assert response.status_code == 200, response.text
        current = response.json()["refresh_token"]
        for _ in range(2):
            with CaptureQueriesContext(connection) as refreshed:
                response = _refresh(http, client, current)
            assert response.status_code == 200, response.text
            current = response.json()["refresh_token"]
        statements[f"exchange {kind}"] = [q["sql"] for q in exchanged.captured_queries]
        statements[f"refresh {kind}"] = [q["sql"] for q in refreshed.captured_queries]
    return statements


def queries_in(tree: Path) -> dict[str, list[str]]:
    env = {**os.environ, "BENCH_TREE": str(tree)}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--queries-only"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def client_creation_ms(n: int = 20) -> float:
    import httpx

    samples = []
    for _ in range(n):
        start = time.perf_counter()
        httpx.Client(timeout=20).close()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--before", type=Path, help="another worktree of the project, run side by side")
    parser.add_argument("--queries-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-only", type=int, metavar="ROUNDS", help="cProfile this tree in-process, then stop")
    parser.add_argument("--show-sql", action="store_true", help="print every statement counted")
    args = parser.parse_args()
    # hundreds of exchanges and a few registrations per run from one address: lift the rate limits
    # (the token limits' own cost stays measured)
    for limit in ("OAUTH_TOKEN_RATE_LIMIT", "OAUTH_TOKEN_CLIENT_RATE_LIMIT", "OAUTH_DCR_RATE_LIMIT"):
        os.environ.setdefault(limit, "1000000")
    setup_django()
    if args.queries_only:
        print(json.dumps(count_queries()))
        return
    if args.profile_only:
        profile(args.profile_only)
        return

    port = int(os.environ.get("BENCH_PORT", "8766"))
    trees = [("after", TREE, port)]
    if args.before:
        trees.append(("before", args.before.resolve(), port + 1))
    queries = {name: queries_in(tree) for name, tree, _ in trees}
    with ExitStack() as stack:
        sides = []
        for name, tree, side_port in trees:  # each gunicorn imports the project from its own tree
            sides.append(Side(name, stack.enter_context(gunicorn(side_port, root=tree))))
        for _ in range(args.rounds):  # interleaved: both trees under the same load
            for side in sides:
                side.exchange_round()
        for _ in range(args.rounds):
            for side in sides:
                side.refresh_round()
    load = os.getloadavg()

    def median_ms(samples: list[float]) -> float:
        return statistics.median(samples) * 1000

    def p90_ms(samples: list[float]) -> float:
        return statistics.quantiles(samples, n=10)[-1] * 1000

    print(
        f"\n{args.rounds} rounds, gunicorn 2 sync workers per tree, loopback, one client at a time (latency, "
        f"not load); load average after the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    keys = ["authorize"] + [f"{step} {kind}" for step in ("exchange", "refresh") for kind in KINDS]
    header = f"{'step':28}" + "".join(f"{s.name + ' median':>15}{s.name + ' p90':>12}{'queries':>9}" for s in sides)
    if len(sides) == 2:
        header += f"{'after/before':>14}"
    print(header)
    for key in keys:
        row = f"{key:28}"
        for side in sides:
            count = len(queries[side.name][key]) if key in queries[side.name] else None
            row += f"{median_ms(side.samples[key]):12.1f} ms{p90_ms(side.samples[key]):9.1f} ms"
            row += f"{count if count is not None else '':>9}"
        if len(sides) == 2:
            row += f"{median_ms(sides[0].samples[key]) / median_ms(sides[1].samples[key]):14.2f}"
        print(row)
    print(
        f"\n(creating an httpx.Client, which the script used to do for every timed request: "
        f"{client_creation_ms():.1f} ms here)"
    )
    if args.show_sql:
        for name, found in queries.items():
            for key, statements in found.items():
                print(f"\n{name} {key}: {len(statements)} statements")
                for sql in statements:  # long literals (codes, checksums, ciphertext) masked
                    masked = re.sub(r"'[^']{16,}'", "'…'", sql)
                    print(f"  {masked[:160]}")


if __name__ == "__main__":
    main()
