"""MCP endpoint throughput against the DRF + django-oauth-toolkit baseline, from one run.

    .venv/bin/python bench/mcp_throughput.py [--duration 10] [--connections 8] [--rounds 3]

Starts gunicorn (2 sync workers) on loopback over DATABASE_URL (or the embedded PostgreSQL), gets a
real access token through the OAuth flow, then drives each endpoint with wrk and prints requests per
second, the ratios, and the database queries per request. Run on demand; never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import gunicorn, setup_django, tool_policy_override

setup_django()

import httpx  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "8765"))
BASE = f"http://127.0.0.1:{PORT}"
MCP = f"{BASE}/t/acme/mcp"
MODERN = "2026-07-28"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


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


def mcp_call_body(contact_id: int) -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "crm_get_contact",
                "arguments": {"contact_id": contact_id},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": MODERN,
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        }
    )


PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})


def wrk_script(method: str, body: str | None, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items()]
    # count non-2xx so a broken run cannot pass for a fast one
    lines.append("bad = 0\nresponse = function(status) if status >= 300 then bad = bad + 1 end end")
    lines.append('done = function() io.write("BAD " .. bad .. "\\n") end')
    return "\n".join(lines)


def run_wrk(wrk: str, url: str, script: str, duration: int, connections: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "-s", fh.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(fh.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = int(re.search(r"BAD (\d+)", out).group(1))
    if bad:
        raise SystemExit(f"{bad} non-2xx responses from {url}:\n{out}")
    return rate


def in_process_ms(method: str, path: str, body: str | None, headers: dict[str, str], n: int = 300) -> float:
    """Median wall time of one request through Django in this process (no HTTP server, no wrk):
    the per-request cost without the load generator competing for the two cores."""
    client = Client(HTTP_HOST=f"127.0.0.1:{PORT}")
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"}
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        if method == "POST":
            client.post(path, data=body, content_type="application/json", **meta)
        else:
            client.get(path, **meta)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def count_queries(method: str, path: str, body: str | None, headers: dict[str, str]) -> int:
    client = Client(HTTP_HOST=f"127.0.0.1:{PORT}")
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"}
    for _ in range(2):  # count the second request: steady state, connection already in the tenant
        with CaptureQueriesContext(connection) as ctx:
            if method == "POST":
                response = client.post(path, data=body, content_type="application/json", **meta)
            else:
                response = client.get(path, **meta)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return len(ctx.captured_queries)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idempotency", type=int, metavar="N", help="only measure the idempotency record (N calls)")
    args = parser.parse_args()
    if args.idempotency:
        idempotency_cost(args.idempotency)
        return
    wrk = ensure_wrk()
    contact_id = prepare()

    # the unauthenticated ping row needs the no-auth tenant_info tool; it is switched back afterwards,
    # or anonymous initialize/tools/list would stay open on acme
    with tool_policy_override("acme", "tenant_info", enabled=True, noauth=True, scopes=""), gunicorn(PORT):
        token = oauth_token(BASE)
        base_token = baseline_token()
        call_headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "MCP-Protocol-Version": MODERN,
            "Mcp-Method": "tools/call",
            "Mcp-Name": "crm_get_contact",
        }
        ping_headers = {"Content-Type": "application/json", "MCP-Protocol-Version": "2025-11-25"}
        drf_headers = {"Authorization": f"Bearer {base_token}"}
        drf_path = f"/t/acme/api/bench/contacts/{contact_id}"
        noauth_path = f"/t/acme/api/bench/contacts-noauth/{contact_id}"
        body = mcp_call_body(contact_id)
        check = httpx.post(MCP, content=body, headers=call_headers).json()
        assert check["result"]["isError"] is False, check

        run_wrk(wrk, MCP, wrk_script("POST", body, call_headers), 2, args.connections)  # warm-up
        targets = {
            "mcp_tools_call_authorized": (MCP, wrk_script("POST", body, call_headers)),
            "mcp_ping_unauthenticated": (MCP, wrk_script("POST", PING, ping_headers)),
            "drf_dot_read": (BASE + drf_path, wrk_script("GET", None, drf_headers)),
            "drf_read_no_auth": (BASE + noauth_path, wrk_script("GET", None, {})),
        }
        # interleaved rounds, median per endpoint: this machine is shared, so runs drift
        samples: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, script) in targets.items():
                samples[name].append(run_wrk(wrk, url, script, args.duration, args.connections))
        rates = {name: statistics.median(values) for name, values in samples.items()}
        latency = {
            "mcp_tools_call_authorized": in_process_ms("POST", "/t/acme/mcp", body, call_headers),
            "mcp_ping_unauthenticated": in_process_ms("POST", "/t/acme/mcp", PING, ping_headers),
            "drf_dot_read": in_process_ms("GET", drf_path, None, drf_headers),
            "drf_read_no_auth": in_process_ms("GET", noauth_path, None, {}),
        }
        queries = {
            "mcp_tools_call_authorized": count_queries("POST", "/t/acme/mcp", body, call_headers),
            "mcp_ping_unauthenticated": count_queries("POST", "/t/acme/mcp", PING, ping_headers),
            "drf_dot_read": count_queries("GET", drf_path, None, drf_headers),
            "drf_read_no_auth": count_queries("GET", noauth_path, None, {}),
        }

    print(
        f"\nwrk -t2 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds (median), "
        "gunicorn 2 sync workers, loopback\n"
    )
    print(f"{'endpoint':28} {'req/s':>8} {'ms/req in-process':>18} {'queries/req':>12}   rounds")
    for name, rate in rates.items():
        spread = ", ".join(f"{v:.0f}" for v in samples[name])
        print(f"{name:28} {rate:8.1f} {latency[name]:18.2f} {queries[name]:12d}   ({spread})")
    print(f"\nauthorized tools/call vs DRF+DOT read: {rates['mcp_tools_call_authorized'] / rates['drf_dot_read']:.2f}x")
    print(f"DRF+DOT read vs DRF read without auth: {rates['drf_read_no_auth'] / rates['drf_dot_read']:.2f}x slower")
    print(
        f"in-process: DRF+DOT {latency['drf_dot_read']:.2f} ms vs "
        f"tools/call {latency['mcp_tools_call_authorized']:.2f} ms "
        f"= {latency['drf_dot_read'] / latency['mcp_tools_call_authorized']:.2f}x"
    )
    print(
        f"auth overhead queries per tools/call: "
        f"{queries['mcp_tools_call_authorized'] - queries['drf_read_no_auth']} "
        f"(tools/call {queries['mcp_tools_call_authorized']} vs unauthenticated read {queries['drf_read_no_auth']})"
    )


if __name__ == "__main__":
    main()
