"""What observability costs on the hot path: authorized ``tools/call`` throughput with auditing and
metrics off, on (the default: successful calls counted in metrics, not audited), and on with every
successful call audited (``AUDIT_TOOL_CALL_SAMPLE_RATE=1``, the worst case).

    .venv/bin/python bench/audit_overhead.py [--duration 5] [--connections 8] [--rounds 5] [--blocks 10]

Reuses bench/mcp_throughput.py's request, token flow and wrk driver: three gunicorns (2 sync workers
each) on loopback, one per configuration, driven by wrk in interleaved rounds (median), then the
in-process median per request for the success and the 403 step-up path with auditing off and on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import MODERN, ensure_wrk, gunicorn, mcp_call_body, run_wrk, wrk_script
from bench.mcp_throughput import PORT, in_process_ms, oauth_token, prepare

CONFIGS = {
    "observability off": {"AUDIT_ENABLED": "0"},
    "audit on (default)": {"AUDIT_ENABLED": "1", "AUDIT_TOOL_CALL_SAMPLE_RATE": "0"},
    "audit every call": {"AUDIT_ENABLED": "1", "AUDIT_TOOL_CALL_SAMPLE_RATE": "1"},
}


def headers(token: str, tool: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args()
    wrk = ensure_wrk()
    body = mcp_call_body(prepare())
    targets: dict[str, tuple[str, str]] = {}
    saved = dict(os.environ)
    with ExitStack() as stack:
        for offset, (name, env) in enumerate(CONFIGS.items()):
            port = PORT + 1 + offset
            metrics_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="prom-"))
            os.environ.update(env)
            if env["AUDIT_ENABLED"] == "1":  # metrics in multiprocess mode, as make run does
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            base = stack.enter_context(gunicorn(port))
            os.environ.clear()
            os.environ.update(saved)
            token = oauth_token(base)
            targets[name] = (f"{base}/t/acme/mcp", wrk_script("POST", body, headers(token, "crm_get_contact")))
        for url, script in targets.values():
            run_wrk(wrk, url, script, 2, args.connections)  # warm-up
        samples: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, script) in targets.items():
                samples[name].append(run_wrk(wrk, url, script, args.duration, args.connections))

    from django.test import override_settings

    with ExitStack() as stack:
        stack.enter_context(gunicorn(PORT))
        token = oauth_token(f"http://127.0.0.1:{PORT}")
        denied_body = body.replace("crm_get_contact", "crm_create_note").replace(
            '"arguments": {"contact_id"', '"arguments": {"body": "x", "contact_id"'
        )
        # alternate the two settings in short blocks, so drift on the shared machine hits both alike
        blocks: dict[tuple[bool, str], list[float]] = {}
        for _ in range(args.blocks):
            for audit in (False, True):
                with override_settings(AUDIT_ENABLED=audit):
                    paths = (("ok", body, "crm_get_contact"), ("denied", denied_body, "crm_create_note"))
                    for kind, payload, tool in paths:
                        blocks.setdefault((audit, kind), []).append(
                            in_process_ms("POST", "/t/acme/mcp", payload, headers(token, tool), n=40)
                        )
        in_process = {
            audit: (statistics.median(blocks[(audit, "ok")]), statistics.median(blocks[(audit, "denied")]))
            for audit in (False, True)
        }

    rates = {name: statistics.median(values) for name, values in samples.items()}
    off = rates["observability off"]
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds (median), "
          "authorized tools/call crm_get_contact, gunicorn 2 sync workers each, loopback\n")
    for name, rate in rates.items():
        spread = ", ".join(f"{v:.0f}" for v in samples[name])
        print(f"{name:22} {rate:8.1f} req/s  {100 * (rate / off - 1):+6.1f} %   ({spread})")
    print("\nin-process median ms/request      success   403 step-up")
    for audit, (ok, denied) in in_process.items():
        print(f"  audit {'on ' if audit else 'off'}                       {ok:7.2f}   {denied:7.2f}")


if __name__ == "__main__":
    main()
