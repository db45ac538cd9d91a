"""MCP ``tools/call`` against the DRF + django-oauth-toolkit baseline, from one run: gunicorn (2 workers,
gthread x 4 like ``make run``) driven by wrk in interleaved rounds (median), then in process the median
ms per request and the statements per request. ``--before-tree``: another checkout served beside this
one, its in-process figures from a child importing its code; with ``--before-db URL`` that child
runs on the other tree's own database (one its code migrated, when its models no longer match this
one's) and the before tree is measured in process only. ``--profile N``: cProfile of N
in-process requests. ``--pairs N``: only target 1 (authorized tools/call against the DRF view without
auth), from N back-to-back pairs of 1 s runs. ``--idempotency N``: only the idempotency record's cost
on a write tools/call."""

from __future__ import annotations

import json
import os
import statistics
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench.common import (
    HOST,
    PORT,
    ROOT,
    InProcess,
    child,
    code_root,
    first_contact,
    gunicorn,
    interleaved,
    load,
    mcp_call_body,
    mcp_headers,
    median_ms,
    mint_token,
    profiled,
    run_wrk,
    setup_django,
    tool_policy_override,
    wrk_parser,
    wrk_script,
)

ENDPOINTS = {
    "mcp_tools_call": "MCP tools/call crm_get_contact, authorized (2026-07-28)",
    "mcp_ping": "MCP ping, unauthenticated (2025-11-25)",
    "drf_dot": "DRF view, same read, OAuth2Authentication + TokenHasScope",
    "drf_noauth": "the same DRF view without authentication",
}
PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})


def requests_for(base: str, contact_id: int) -> dict[str, tuple]:
    """name -> (method, path, body, headers) against the server at ``base``. DOT's own resource check is
    a URL prefix match, so the DRF view's token has no audience (DOT without RFC 8707)."""
    mcp = mint_token("acme", resource=[f"{base}/t/acme/mcp"])
    drf = mint_token("acme", resource=[])
    path = f"/t/acme/api/bench/contacts{{}}/{contact_id}"
    return {
        "mcp_tools_call": ("POST", "/t/acme/mcp", mcp_call_body(contact_id), mcp_headers(mcp)),
        "mcp_ping": (
            "POST",
            "/t/acme/mcp",
            PING,
            {"Content-Type": "application/json", "MCP-Protocol-Version": "2025-11-25"},
        ),
        "drf_dot": ("GET", path.format(""), None, {"Authorization": f"Bearer {drf}"}),
        "drf_noauth": ("GET", path.format("-noauth"), None, {}),
    }


def measure_here(profile_n: int) -> dict:
    """This process's code: in-process medians (endpoints alternating request by request, so a burst of
    load cannot fall on one endpoint's block), statements per request, an optional profile."""
    requests, client = requests_for(f"http://{HOST}", first_contact("acme")), InProcess()
    for request in requests.values():
        client.timed(request, 20)  # warm-up: connection in the tenant, caches filled
    samples = interleaved({name: lambda r=request: client.timed(r, 1)[0] for name, request in requests.items()}, 600)
    result = {
        "ms": {name: median_ms(values) for name, values in samples.items()},
        "queries": {name: client.queries(request) for name, request in requests.items()},
    }
    if profile_n:
        where = r"/(mcp_tools|tenants|crm|oauth2_provider|oauthlib|rest_framework|mcp_types|mcp/shared)/"
        result["profile"] = "".join(
            f"\n--- {name}: {profile_n} requests in process\n"
            + profiled(lambda r=requests[name]: client.timed(r, profile_n), top=10, where=where, strip=str(code_root()))
            for name in ("mcp_tools_call", "drf_noauth", "drf_dot")
        )
    return result


def idempotency_cost(n: int) -> None:
    """crm_create_note in process without a key, with a fresh key each call, and a replay of one key."""
    from django_tenants.utils import schema_context

    from crm.models import Note

    contact, client = first_contact("acme"), InProcess()
    headers = mcp_headers(mint_token("acme", scope="crm.read crm.write"), "crm_create_note")
    key_meta = "tenant-oauth-mcp/idempotency-key"

    def note(body: str, key: str | None) -> tuple:
        meta = {key_meta: key} if key else {}
        return ("POST", "/t/acme/mcp", mcp_call_body(contact, "crm_create_note", meta, body=body), headers)

    replay = uuid.uuid4().hex
    modes = {
        "write, no key": lambda i: note(f"bench-idem {i}", None),
        "write, fresh key": lambda i: note(f"bench-idem {i}", uuid.uuid4().hex),
        "replay of one key": lambda i: note("bench-idem replay", replay),
    }
    for build in modes.values():
        client.timed(build(-1), 1, check=True)  # warm-up (and, for the replay, the first real call)
    counter = iter(range(10**9))
    samples = interleaved(
        {name: lambda b=build: client.timed(b(next(counter)), 1, check=True)[0] for name, b in modes.items()}, n
    )
    with schema_context("acme"):
        Note.objects.filter(body__startswith="bench-idem").delete()
    print(f"\ncrm_create_note in-process, {n} calls per mode (median ms, statements of one call)\n")
    base = median_ms(samples["write, no key"])
    for name, build in modes.items():
        ms = median_ms(samples[name])
        print(f"{name:20} {ms:8.2f} ms  {client.queries(build(n)):3d} queries  ({ms - base:+.2f} ms vs no key)")
    with schema_context("acme"):
        Note.objects.filter(body__startswith="bench-idem").delete()


def paired(scripts: dict, trees: list[str], n: int, connections: int) -> None:
    """The authorized tools/call and the unauthenticated DRF view of each tree, 1 s each, back to back,
    ``n`` times (which goes first alternates): load drifts over seconds, so the ratio within each pair
    is much steadier than the ratio of medians over rounds. The median of the pair ratios is reported."""
    ratios: dict[str, list[float]] = {tree: [] for tree in trees}
    for i in range(n):
        for tree in trees:
            order = ("mcp_tools_call", "drf_noauth")[:: 1 if i % 2 == 0 else -1]
            rate = {name: run_wrk(*scripts[(tree, name)], 1, connections) for name in order}
            ratios[tree].append(rate["mcp_tools_call"] / rate["drf_noauth"])
    print(f"\nwrk -t2 -c{connections} -d1s, {n} pairs per tree; {load()}")
    for tree, values in ratios.items():
        q = statistics.quantiles(values, n=4)
        print(
            f"  [{tree}] authorized tools/call / DRF no auth, req/s: median {statistics.median(values):.3f} "
            f"(quartiles {q[0]:.3f}-{q[2]:.3f}; above 1.0 in {sum(v > 1 for v in values)} of {n})"
        )


def main(argv: list[str]) -> None:
    parser = wrk_parser(__name__, __doc__, duration=10, rounds=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=("sync", "gthread", "uvicorn"), default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker with --worker-class gthread")
    parser.add_argument("--before-tree", type=Path, help="another checkout to measure side by side (before)")
    parser.add_argument(
        "--before-db",
        help="with --before-tree: that tree's own database (migrated by its code), measured in process only",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile N in-process requests")
    parser.add_argument("--in-process-json", action="store_true", help="only this tree in process, as JSON")
    parser.add_argument("--idempotency", type=int, metavar="N", help="only measure the idempotency record (N calls)")
    parser.add_argument("--pairs", type=int, metavar="N", help="only target 1: N paired 1 s runs per tree")
    args = parser.parse_args(argv)
    setup_django()
    if args.idempotency:
        return idempotency_cost(args.idempotency)
    # the unauthenticated ping needs the no-auth tenant_info tool; it is switched back afterwards, or
    # anonymous initialize/tools/list would stay open on acme
    policy = tool_policy_override("acme", "tenant_info", enabled=True, noauth=True, scopes="")
    if args.in_process_json:  # the child of --before-tree (or on its own: this tree in process only)
        with policy:
            print(json.dumps(measure_here(args.profile)))
        return None
    threads = args.threads if args.worker_class == "gthread" else 1
    if args.before_db and not args.before_tree:
        parser.error("--before-db needs --before-tree")
    # a before tree on its own database is measured in process only: its tokens live in that database
    trees = {"before": args.before_tree.resolve()} if args.before_tree and not args.before_db else {}
    trees["after"] = ROOT
    ports = {"after": PORT, "before": int(os.environ.get("BENCH_BEFORE_PORT", PORT + 2))}
    with policy, ExitStack() as stack:
        scripts: dict[tuple[str, str], tuple[str, str]] = {}
        for tree, root in trees.items():
            server = gunicorn(ports[tree], args.workers, worker_class=args.worker_class, threads=threads, root=root)
            base = stack.enter_context(server)
            for name, (method, path, body, headers) in requests_for(base, first_contact("acme")).items():
                scripts[(tree, name)] = (base + path, wrk_script(method, body, headers))
        for url, script in scripts.values():  # warm-up (and a check: any non-2xx stops the run)
            run_wrk(url, script, 1, args.connections)
        if args.pairs:
            return paired(scripts, list(trees), args.pairs, args.connections)
        runs = {
            key: lambda s=script, u=url: run_wrk(u, s, args.duration, args.connections)
            for key, (url, script) in scripts.items()
        }
        samples = interleaved(runs, args.rounds)
        measured = {"after": measure_here(args.profile)}
        if args.before_tree:
            env = {"DATABASE_URL": args.before_db} if args.before_db else None
            measured["before"] = child(
                "mcp-throughput", "--in-process-json", "--profile", str(args.profile), code=args.before_tree, env=env
            )
    report(args, list(measured), samples, measured, threads)
    return None


def report(args, trees: list[str], samples: dict, measured: dict, threads: int) -> None:
    rates = {key: statistics.median(values) for key, values in samples.items()}
    nan = float("nan")  # no wrk figures for a tree measured in process only (--before-db)
    workers = f"{args.workers} {args.worker_class} workers" + (f" x {threads} threads" if threads > 1 else "")
    print(
        f"\nwrk -t2 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds (median), "
        f"gunicorn {workers}, loopback; {load()}\n"
    )
    print(f"{'tree':7} {'endpoint':16} {'req/s':>8} {'ms/req in-process':>18} {'queries/req':>12}   rounds")
    for tree in trees:
        for name in ENDPOINTS:
            spread = ", ".join(f"{v:.0f}" for v in samples.get((tree, name), []))
            ms, queries = measured[tree]["ms"][name], measured[tree]["queries"][name]
            print(f"{tree:7} {name:16} {rates.get((tree, name), nan):8.1f} {ms:18.2f} {queries:12d}   ({spread})")
    print("\n" + "\n".join(f"  {name:16} {label}" for name, label in ENDPOINTS.items()))
    for tree in trees:
        r, ms, q = (lambda n, t=tree: rates.get((t, n), nan)), measured[tree]["ms"], measured[tree]["queries"]
        print(f"\n[{tree}]")
        for other, target in (("drf_dot", "2.0"), ("drf_noauth", "1.0")):
            print(
                f"  authorized tools/call vs {other}: {r('mcp_tools_call') / r(other):.2f}x req/s, "
                f"{ms[other] / ms['mcp_tools_call']:.2f}x in-process (target >= {target}x)"
            )
        print(f"  DRF+DOT vs DRF no auth: {r('drf_dot') / r('drf_noauth'):.2f}x req/s")
        print(
            f"  auth overhead queries (beyond the unauthenticated read of the same data): "
            f"tools/call {q['mcp_tools_call'] - q['drf_noauth']} (target <= 2; "
            f"{q['mcp_tools_call']} statements vs {q['drf_noauth']}), DRF+DOT {q['drf_dot'] - q['drf_noauth']}"
        )
    if ("before", "mcp_tools_call") in rates:
        print("\nafter vs before (req/s):")
        for name in ENDPOINTS:
            print(f"  {name:16} {rates[('after', name)] / rates[('before', name)]:.2f}x")
    for tree in trees if args.profile else []:
        print(f"\n===== cProfile, {tree} =====\n{measured[tree]['profile']}")
