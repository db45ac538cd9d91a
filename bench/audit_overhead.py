"""What observability costs on the hot path: authorized ``tools/call`` throughput with auditing and
metrics off, on (the default: successful calls counted in metrics, not audited), and on with every
successful call audited (``AUDIT_TOOL_CALL_SAMPLE_RATE=1``, the worst case): three gunicorns (2 sync
workers each), wrk in interleaved rounds (median); then the in-process median per request for the
success and the 403 step-up path with auditing off and on, alternating in short blocks."""

from __future__ import annotations

import statistics
import tempfile
from contextlib import ExitStack

from bench.common import (
    PORT,
    InProcess,
    first_contact,
    gunicorn,
    interleaved,
    mcp_call_body,
    mcp_headers,
    median_ms,
    oauth_token,
    run_wrk,
    setup_django,
    wrk_parser,
    wrk_script,
)

CONFIGS = {
    "observability off": {"AUDIT_ENABLED": "0"},
    "audit on (default)": {"AUDIT_ENABLED": "1", "AUDIT_TOOL_CALL_SAMPLE_RATE": "0"},
    "audit every call": {"AUDIT_ENABLED": "1", "AUDIT_TOOL_CALL_SAMPLE_RATE": "1"},
}


def main(argv: list[str]) -> None:
    parser = wrk_parser(__name__, __doc__, duration=5, rounds=5)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args(argv)
    setup_django()
    from django.test import override_settings

    contact = first_contact("acme")
    body = mcp_call_body(contact)
    with ExitStack() as stack:
        targets = {}
        for offset, (name, env) in enumerate(CONFIGS.items()):
            if env["AUDIT_ENABLED"] == "1":  # metrics in multiprocess mode, as make run does
                env = {**env, "PROMETHEUS_MULTIPROC_DIR": stack.enter_context(tempfile.TemporaryDirectory())}
            base = stack.enter_context(gunicorn(PORT + 1 + offset, env=env))
            targets[name] = (f"{base}/t/acme/mcp", wrk_script("POST", body, mcp_headers(oauth_token(base))))
        for url, script in targets.values():
            run_wrk(url, script, 2, args.connections)  # warm-up
        runs = {name: lambda t=target: run_wrk(*t, args.duration, args.connections) for name, target in targets.items()}
        samples = interleaved(runs, args.rounds)

    with gunicorn(PORT) as base:  # the token's audience is this server's MCP URL
        token, client = oauth_token(base), InProcess()
    paths = {
        "ok": ("POST", "/t/acme/mcp", body, mcp_headers(token)),
        "denied": (
            "POST",
            "/t/acme/mcp",
            mcp_call_body(contact, "crm_create_note", body="x"),
            mcp_headers(token, "crm_create_note"),
        ),
    }
    blocks: dict[tuple[bool, str], list[float]] = {}
    for _ in range(args.blocks):
        for audit in (False, True):
            with override_settings(AUDIT_ENABLED=audit):
                for kind, request in paths.items():
                    blocks.setdefault((audit, kind), []).append(median_ms(client.timed(request, 40)))

    rates = {name: statistics.median(values) for name, values in samples.items()}
    off = rates["observability off"]
    print(
        f"\nwrk -t2 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds (median), "
        "authorized tools/call crm_get_contact, gunicorn 2 sync workers each, loopback\n"
    )
    for name, rate in rates.items():
        spread = ", ".join(f"{v:.0f}" for v in samples[name])
        print(f"{name:22} {rate:8.1f} req/s  {100 * (rate / off - 1):+6.1f} %   ({spread})")
    print("\nin-process median ms/request      success   403 step-up")
    for audit in (False, True):
        ok, denied = (statistics.median(blocks[(audit, kind)]) for kind in ("ok", "denied"))
        print(f"  audit {'on ' if audit else 'off'}                       {ok:7.2f}   {denied:7.2f}")
