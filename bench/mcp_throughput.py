"""MCP endpoint throughput against the DRF + django-oauth-toolkit baseline, from one run.

    .venv/bin/python bench/mcp_throughput.py [--duration 10] [--connections 8] [--rounds 3]
        [--worker-class gthread|sync|uvicorn] [--threads 4] [--before-tree /work/wt/perf-mcp-base]
        [--profile 300] [--pairs 30]

Starts gunicorn (2 workers, gthread x 4 like ``make run``, by default) on loopback over DATABASE_URL (or the embedded
PostgreSQL), mints access tokens, then drives each endpoint with wrk and prints requests per second,
the ratios, the in-process milliseconds per request and the database queries per request (the auth
overhead counted explicitly). ``--before-tree`` serves another checkout of the project (say main's
worktree) with this virtualenv and database beside this one, and interleaves its rounds with this
tree's, so before and after come from one run. ``--profile N`` prints cProfile's top entries of N
in-process requests. ``--pairs N`` measures only the ratio of target 1 (authorized tools/call against
the DRF view without auth), from N back-to-back pairs of 1 s runs per tree. Run on demand; never part
of the tests.
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


def _code_root() -> Path:
    """``--code-root``: import the project (and its bench.common) from another checkout; used for the
    in-process figures of ``--before-tree``, which cannot share a process with this tree's code."""
    if "--code-root" in sys.argv:
        return Path(sys.argv[sys.argv.index("--code-root") + 1]).resolve()
    return Path(__file__).resolve().parent.parent


CODE_ROOT = _code_root()
sys.path.insert(0, str(CODE_ROOT))
from bench.common import (  # noqa: E402
    MODERN,
    ensure_wrk,
    mcp_call_body,
    run_wrk,
    setup_django,
    tool_policy_override,
    wrk_script,
)

setup_django()

import httpx  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "8765"))
BASE = f"http://127.0.0.1:{PORT}"
MCP = f"{BASE}/t/acme/mcp"
OLD = "2025-11-25"


def prepare() -> int:
    from crm.models import Contact

    with schema_context("acme"):
        return Contact.objects.order_by("pk").values_list("pk", flat=True).first()


def oauth_token(base: str) -> str:
    """A real token for the MCP resource: registration, login, consent, code exchange."""
    from probe.oauth_flow import Browser, Tenant, obtain_tokens, register

    tenant = Tenant(f"{base}/t/acme", "acme")
    client = register(tenant)
    browser = Browser(tenant, "member@acme.example", password=os.environ["DEMO_MEMBER_PASSWORD"])
    browser.login()
    return obtain_tokens(browser, client, scope="crm.read")["access_token"]


def baseline_token() -> str:
    """DOT's own resource check is a URL prefix match, so the DRF view (not under /mcp) gets a token
    without an audience, as a DOT deployment without RFC 8707 would issue."""
    return minted_token("crm.read", [])


def minted_token(scope: str, resource: list[str]) -> str:
    import secrets
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application, set_token_value

    from accounts.models import User

    raw = secrets.token_urlsafe(30)
    with schema_context("acme"):
        app, _ = Application.objects.get_or_create(
            name="bench-baseline",
            defaults={
                "client_type": "confidential",
                "authorization_grant_type": "authorization-code",
                "redirect_uris": "https://bench.example/cb",
            },
        )
        token = AccessToken(
            user=User.objects.get(email="member@acme.example"),
            application=app,
            scope=scope,
            expires=timezone.now() + timedelta(hours=1),
            resource=resource,
        )
        set_token_value(token, raw)
        token.save()
    return raw


PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})


ENDPOINTS = {  # name: (label, method, needs a token for this server)
    "mcp_tools_call": "MCP tools/call crm_get_contact, authorized (2026-07-28)",
    "mcp_ping": "MCP ping, unauthenticated (2025-11-25)",
    "drf_dot": "DRF view, same read, OAuth2Authentication + TokenHasScope",
    "drf_noauth": "the same DRF view without authentication",
}


def requests_for(base: str, contact_id: int, mcp_token: str, drf_token: str) -> dict[str, tuple]:
    """name -> (method, path, body, headers) against the server at ``base``."""
    call_headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {mcp_token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "crm_get_contact",
    }
    return {
        "mcp_tools_call": ("POST", "/t/acme/mcp", mcp_call_body(contact_id), call_headers),
        "mcp_ping": ("POST", "/t/acme/mcp", PING, {"Content-Type": "application/json", "MCP-Protocol-Version": OLD}),
        "drf_dot": ("GET", f"/t/acme/api/bench/contacts/{contact_id}", None, {"Authorization": f"Bearer {drf_token}"}),
        "drf_noauth": ("GET", f"/t/acme/api/bench/contacts-noauth/{contact_id}", None, {}),
    }


def _client_call(client: Client, method: str, path: str, body: str | None, headers: dict[str, str]):
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"}
    if method == "POST":
        return client.post(path, data=body, content_type="application/json", **meta)
    return client.get(path, **meta)


def in_process(requests: dict[str, tuple], n: int = 600, blocks: int = 600) -> dict[str, float]:
    """Median wall time (ms) of one request through Django in this process (no HTTP server, no wrk),
    the endpoints alternating in blocks so drift on the shared machine hits them alike (by default
    request by request: with blocks of 30, a burst of load on the shared machine could still fall on
    one endpoint's block and move the ratios by 10 %)."""
    client = Client(HTTP_HOST=f"127.0.0.1:{PORT}")
    samples: dict[str, list[float]] = {name: [] for name in requests}
    for request in requests.values():
        for _ in range(20):  # warm-up: connection in the tenant, caches filled
            _client_call(client, *request)
    for _ in range(blocks):
        for name, request in requests.items():
            for _ in range(n // blocks):
                start = time.perf_counter()
                _client_call(client, *request)
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def in_process_ms(method: str, path: str, body: str | None, headers: dict[str, str], n: int = 300) -> float:
    """Median wall time of ``n`` sequential requests to one endpoint in this process (bench/audit_overhead.py)."""
    client = Client(HTTP_HOST=f"127.0.0.1:{PORT}")
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        _client_call(client, method, path, body, headers)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def count_queries(request: tuple) -> int:
    client = Client(HTTP_HOST=f"127.0.0.1:{PORT}")
    for _ in range(2):  # count the second request: steady state, connection already in the tenant
        with CaptureQueriesContext(connection) as ctx:
            response = _client_call(client, *request)
    assert response.status_code == 200, (request[1], response.status_code, response.content[:300])
    return len(ctx.captured_queries)


def profile(requests: dict[str, tuple], names: tuple[str, ...], n: int, top: int = 10) -> str:
    """cProfile of ``n`` in-process requests per endpoint: the top entries by own time, then the
    project's and the auth libraries' functions by cumulative time (where a request's time goes)."""
    import cProfile
    import io
    import pstats

    client = Client(HTTP_HOST=f"127.0.0.1:{PORT}")
    out = io.StringIO()
    where = r"/(mcp_tools|tenants|crm|oauth2_provider|oauthlib|rest_framework|mcp_types|mcp/shared)/"
    for name in names:
        for _ in range(20):
            _client_call(client, *requests[name])
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            _client_call(client, *requests[name])
        profiler.disable()
        out.write(f"\n--- {name}: {n} requests in process; top {top} by own time\n")
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
        out.write(f"--- {name}: project and auth-library functions by cumulative time\n")
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(where, 2 * top)
    text = re.sub(r"\S*/site-packages/", "", out.getvalue().replace(str(CODE_ROOT) + "/", ""))
    return re.sub(r"\n{3,}", "\n\n", text)


def measure_here(contact_id: int, profile_n: int) -> dict:
    """This process's code: in-process medians, queries per request, optional profile."""
    mcp_token = minted_token("crm.read", [f"http://127.0.0.1:{PORT}/t/acme/mcp"])
    requests = requests_for(f"http://127.0.0.1:{PORT}", contact_id, mcp_token, baseline_token())
    result = {
        "ms": in_process(requests),
        "queries": {name: count_queries(request) for name, request in requests.items()},
    }
    if profile_n:
        result["profile"] = profile(requests, ("mcp_tools_call", "drf_noauth", "drf_dot"), profile_n)
    return result


def measure_tree(tree: Path, profile_n: int) -> dict:
    """``measure_here`` with another checkout's code, in a child process."""
    out = subprocess.run(
        [sys.executable, __file__, "--code-root", str(tree), "--in-process-json", "--profile", str(profile_n)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- exactly-once (issue 13): the cost of the idempotency record on a write tools/call ---------------
def _note_call(contact_id: int, body: str, key: str | None) -> str:
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    if key is not None:
        meta["tenant-oauth-mcp/idempotency-key"] = key
    arguments = {"contact_id": contact_id, "body": body}
    params = {"name": "crm_create_note", "arguments": arguments, "_meta": meta}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


def _write_sample(headers: dict[str, str], body: str) -> tuple[float, int]:
    client = Client(HTTP_HOST=f"127.0.0.1:{PORT}")
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"}
    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        response = client.post("/t/acme/mcp", data=body, content_type="application/json", **meta)
        elapsed = time.perf_counter() - start
    assert response.status_code == 200 and b'"isError": false' in response.content, response.content[:300]
    return elapsed, len(ctx.captured_queries)


def idempotency_cost(n: int) -> None:
    """In-process medians (no HTTP server in the loop, the load generator does not compete for the
    cores): crm_create_note without a key, with a fresh key each call, and a replay of one key."""
    import uuid

    from crm.models import Note

    contact_id = prepare()
    token = minted_token("crm.read crm.write", [MCP])
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "crm_create_note",
    }
    replay_key = uuid.uuid4().hex
    modes = {
        "write, no key": lambda i: _note_call(contact_id, f"bench-idem {i}", None),
        "write, fresh key": lambda i: _note_call(contact_id, f"bench-idem {i}", uuid.uuid4().hex),
        "replay of one key": lambda i: _note_call(contact_id, "bench-idem replay", replay_key),
    }
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in modes}
    for build in modes.values():
        _write_sample(headers, build(-1))  # warm-up (and, for the replay, the first real call)
    for i in range(n):  # interleaved, so drift on the shared machine hits every mode alike
        for name, build in modes.items():
            results[name].append(_write_sample(headers, build(i)))
    with schema_context("acme"):
        Note.objects.filter(body__startswith="bench-idem").delete()
    print(f"\ncrm_create_note in-process, {n} calls per mode (median ms, queries of the last call)\n")
    base = statistics.median(r[0] for r in results["write, no key"]) * 1000
    for name, samples in results.items():
        ms = statistics.median(r[0] for r in samples) * 1000
        print(f"{name:20} {ms:8.2f} ms  {samples[-1][1]:3d} queries  ({ms - base:+.2f} ms vs no key)")


def paired(wrk: str, scripts: dict, trees: list[str], n: int, connections: int) -> None:
    """``--pairs``: the authorized tools/call and the unauthenticated DRF view of each tree, 1 s each,
    back to back, ``n`` times (which goes first alternates). Load on a shared machine drifts over
    seconds: the ratio within each pair, of runs two seconds apart, is much steadier than the ratio of
    medians over rounds of 8 endpoints; the median of the pair ratios is reported."""
    ratios: dict[str, list[float]] = {tree: [] for tree in trees}
    for i in range(n):
        for tree in trees:
            order = ("mcp_tools_call", "drf_noauth") if i % 2 == 0 else ("drf_noauth", "mcp_tools_call")
            rate = {name: run_wrk(wrk, *scripts[(tree, name)], 1, connections) for name in order}
            ratios[tree].append(rate["mcp_tools_call"] / rate["drf_noauth"])
    load = os.getloadavg()
    print(f"\nwrk -t2 -c{connections} -d1s, {n} pairs per tree; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for tree, values in ratios.items():
        quartiles = statistics.quantiles(values, n=4)
        print(
            f"  [{tree}] authorized tools/call / DRF no auth, req/s: median {statistics.median(values):.3f} "
            f"(quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}; above 1.0 in {sum(v > 1 for v in values)} of {n})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    # the default is what `make run` serves (config/gunicorn.py)
    parser.add_argument("--worker-class", choices=("sync", "gthread", "uvicorn"), default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker with --worker-class gthread")
    parser.add_argument("--before-tree", type=Path, help="another checkout to measure side by side (before)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile N in-process requests")
    parser.add_argument("--code-root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--in-process-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--idempotency", type=int, metavar="N", help="only measure the idempotency record (N calls)")
    parser.add_argument(
        "--pairs", type=int, metavar="N", help="only tools/call against the DRF view without auth: N paired 1 s runs"
    )
    args = parser.parse_args()
    if args.idempotency:
        idempotency_cost(args.idempotency)
        return
    contact_id = prepare()
    if args.in_process_json:  # the child of measure_tree (or on its own: this tree in process only)
        with tool_policy_override("acme", "tenant_info", enabled=True, noauth=True, scopes=""):
            print(json.dumps(measure_here(contact_id, args.profile)))
        return
    from bench.common import gunicorn

    wrk = ensure_wrk()
    threads = args.threads if args.worker_class == "gthread" else 1
    trees = {"after": Path(__file__).resolve().parent.parent}
    if args.before_tree:
        trees = {"before": args.before_tree.resolve(), **trees}
    ports = {"after": PORT, "before": int(os.environ.get("BENCH_BEFORE_PORT", PORT + 2))}
    drf_token = baseline_token()

    # the unauthenticated ping row needs the no-auth tenant_info tool; it is switched back afterwards,
    # or anonymous initialize/tools/list would stay open on acme
    with tool_policy_override("acme", "tenant_info", enabled=True, noauth=True, scopes=""), ExitStack() as stack:
        scripts: dict[tuple[str, str], tuple[str, str]] = {}
        for tree, root in trees.items():
            base = stack.enter_context(
                gunicorn(ports[tree], args.workers, worker_class=args.worker_class, threads=threads, root=root)
            )
            mcp_token = minted_token("crm.read", [f"{base}/t/acme/mcp"])
            for name, (method, path, body, headers) in requests_for(base, contact_id, mcp_token, drf_token).items():
                check = httpx.request(method, base + path, content=body, headers=headers)
                assert check.status_code == 200, (tree, name, check.status_code, check.text[:300])
                scripts[(tree, name)] = (base + path, wrk_script(method, body, headers))
        for url, script in scripts.values():  # warm-up
            run_wrk(wrk, url, script, 1, args.connections)
        if args.pairs:
            paired(wrk, scripts, list(trees), args.pairs, args.connections)
            return
        # interleaved rounds, median per endpoint: this machine is shared, so runs drift
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in scripts}
        for _ in range(args.rounds):
            for key, (url, script) in scripts.items():
                samples[key].append(run_wrk(wrk, url, script, args.duration, args.connections))
        here = measure_here(contact_id, args.profile)
        measured = {"after": here}
        if args.before_tree:
            measured["before"] = measure_tree(args.before_tree, args.profile)
    rates = {key: statistics.median(values) for key, values in samples.items()}
    report(args, trees, rates, samples, measured, threads)


def report(args, trees, rates, samples, measured, threads) -> None:
    load = os.getloadavg()
    workers = f"{args.workers} {args.worker_class} workers" + (f" x {threads} threads" if threads > 1 else "")
    print(
        f"\nwrk -t2 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds (median), "
        f"gunicorn {workers}, loopback; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    print(f"{'tree':7} {'endpoint':16} {'req/s':>8} {'ms/req in-process':>18} {'queries/req':>12}   rounds")
    for tree in trees:
        for name in ENDPOINTS:
            spread = ", ".join(f"{v:.0f}" for v in samples[(tree, name)])
            ms, queries = measured[tree]["ms"][name], measured[tree]["queries"][name]
            print(f"{tree:7} {name:16} {rates[(tree, name)]:8.1f} {ms:18.2f} {queries:12d}   ({spread})")
    print()
    for name, label in ENDPOINTS.items():
        print(f"  {name:16} {label}")
    for tree in trees:
        r, ms, q = (lambda n, t=tree: rates[(t, n)]), measured[tree]["ms"], measured[tree]["queries"]
        print(f"\n[{tree}]")
        print(
            f"  authorized tools/call vs DRF+DOT:      {r('mcp_tools_call') / r('drf_dot'):.2f}x req/s, "
            f"{ms['drf_dot'] / ms['mcp_tools_call']:.2f}x in-process (target >= 2.0x)"
        )
        print(
            f"  authorized tools/call vs DRF no auth:  {r('mcp_tools_call') / r('drf_noauth'):.2f}x req/s, "
            f"{ms['drf_noauth'] / ms['mcp_tools_call']:.2f}x in-process (target >= 1.0x)"
        )
        print(f"  DRF+DOT vs DRF no auth:                {r('drf_dot') / r('drf_noauth'):.2f}x req/s")
        print(
            f"  auth overhead queries (beyond the unauthenticated read of the same data): "
            f"tools/call {q['mcp_tools_call'] - q['drf_noauth']} (target <= 2; "
            f"{q['mcp_tools_call']} statements vs {q['drf_noauth']}), DRF+DOT {q['drf_dot'] - q['drf_noauth']}"
        )
    if "before" in trees:
        print("\nafter vs before (req/s):")
        for name in ENDPOINTS:
            print(f"  {name:16} {rates[('after', name)] / rates[('before', name)]:.2f}x")
    if args.profile:
        for tree in trees:
            print(f"\n===== cProfile, {tree} =====")
            print(measured[tree]["profile"])


if __name__ == "__main__":
    main()
