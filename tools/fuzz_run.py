"""The edge fuzzer of ``tests/test_fuzz_edges.py``, scaled up and pointed at a running platform
(``make run``): every endpoint family its strategies cover (``tests/fuzz_strategies.py``), over
kept-alive connections reused from one request to the next, as real clients and load balancers use
them, plus bodies the platform refuses unread: 70 KiB to 3 MB on the kept-alive connection, and
chunked ones and ones above ``REQUEST_BODY_DRAIN_BYTES``, after which the server closes the
connection on purpose (``config.body_drain``), sent while reading the answer, as curl does.

It counts every answer by status and reports two things that must both be zero: answers of 500 or
above, and requests that got no HTTP answer at all (the connection closed or reset under a request
the server had announced it would keep alive). Exit status 1 when either is not zero.

    make run   # in another shell; for a deep run, with the abuse limits out of the way and an idle
               # timeout longer than the generator's pauses:
               # GUNICORN_KEEPALIVE=60 OAUTH_TOKEN_RATE_LIMIT=1000000 OAUTH_TOKEN_CLIENT_RATE_LIMIT=1000000 \\
               # OAUTH_DCR_RATE_LIMIT=1000000 LOGIN_FAILURE_LIMIT=1000000 LOGIN_ADDRESS_FAILURE_LIMIT=1000000 \\
               # LOGIN_ACCOUNT_FAILURE_LIMIT=1000000 make run
    .venv/bin/python tools/fuzz_run.py --requests 20000 --jobs 2

It signs in as the demo member of ``acme`` (``DEMO_MEMBER_PASSWORD`` from ``var/dev.env``, or
``--password``) through a client it registers, so the MCP requests carry a valid token as well as
made-up ones. Generation uses hypothesis (the test file's strategies), one process per job with its
own seed (printed, ``--seed`` repeats a run).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import random
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MCP_JSON = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
FAMILIES = ("mcp", "token", "revoke_introspect", "login", "authorize", "routing", "registration", "bodies")


@dataclass
class Plan:
    base: str  # http://127.0.0.1:8000
    tenant: str
    token: str
    client_id: str
    redirect_uri: str
    cookies: str  # the signed-in browser's Cookie header (authorize and consent)
    csrf: str


@dataclass
class Request:
    family: str
    method: str
    path: str
    headers: list[tuple[str, str | bytes]]
    body: bytes | None = None
    chunked: bool = False
    reader: bool = False  # above the drain bound: send from a thread while reading, as curl does


@dataclass
class Tally:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    by_family: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    no_answer: list[str] = field(default_factory=list)
    connections: int = 0
    unsendable: int = 0  # generated requests http.client will not write (not sent, not counted)

    def merge(self, other: dict) -> None:
        self.sent += other["sent"]
        self.statuses.update(other["statuses"])
        self.by_family.update(other["by_family"])
        self.server_errors += other["server_errors"]
        self.no_answer += other["no_answer"]
        self.connections += other["connections"]
        self.unsendable += other["unsendable"]


# --- sending ----------------------------------------------------------------------------------------


class Sender:
    """One kept-alive connection, reused until the server says ``Connection: close``."""

    def __init__(self, base: str, tally: Tally) -> None:
        parts = urlsplit(base)
        self.host, self.port, self.netloc = parts.hostname, parts.port or 80, parts.netloc
        self.tally = tally
        self.connection: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None or self.connection.sock is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.connection.connect()
            self.tally.connections += 1
        return self.connection

    def send(self, request: Request) -> None:
        what = f"{request.family} {request.method} {request.path[:120]!r} body={len(request.body or b'')}B"
        try:
            status = self._reader_send(request) if request.reader else self._send(request)
        except ValueError:  # http.client refused to write it (a header or path it will not send): not sent
            self.tally.unsendable += 1
            if self.connection is not None:
                self.connection.close()
            self.connection = None
            return
        except (OSError, http.client.HTTPException) as exc:
            self._count(request)
            self.tally.no_answer.append(f"{what}: {type(exc).__name__}: {exc}"[:400])
            if self.connection is not None:
                self.connection.close()
            self.connection = None
            return
        self._count(request)
        self.tally.statuses[status] += 1
        if status >= 500:
            self.tally.server_errors.append(f"{status} {what}"[:400])

    def _count(self, request: Request) -> None:
        self.tally.sent += 1
        self.tally.by_family[request.family] += 1

    def _send(self, request: Request) -> int:
        connection = self._connection()
        connection.putrequest(request.method, request.path, skip_host=True, skip_accept_encoding=True)
        names = {name.lower() for name, _ in request.headers}
        if "host" not in names:
            connection.putheader("Host", self.netloc)
        for name, value in request.headers:
            connection.putheader(name, value)
        if request.body is not None:
            connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body)
        response = connection.getresponse()
        response.read()
        return response.status

    def _reader_send(self, request: Request) -> int:
        """A body the server closes the connection after (larger than it drains, or chunked): the
        answer, with ``Connection: close``, may come while the upload is still going, so read while
        sending, as curl and browsers do (on a connection of its own)."""
        body = request.body or b""
        head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {self.netloc}"]
        head += [f"{name}: {value}" for name, value in request.headers]
        if request.chunked:
            head.append("Transfer-Encoding: chunked")
            halves = [body[: len(body) // 2], body[len(body) // 2 :]]
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in halves if part) + b"0\r\n\r\n"
        else:
            head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.tally.connections += 1
        with socket.create_connection((self.host, self.port), timeout=60) as sock:

            def upload() -> None:
                with contextlib.suppress(OSError):
                    sock.sendall(raw)

            sender = threading.Thread(target=upload, daemon=True)
            sender.start()
            received = b""
            while b"\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    raise http.client.RemoteDisconnected("closed before a status line")
                received += chunk
            sender.join(timeout=60)
        return int(received.split(b" ", 2)[1])


# --- requests from the test file's strategies -------------------------------------------------------


def strategies(plan: Plan) -> dict[str, Any]:
    """One hypothesis strategy of ``Request`` per family."""
    from hypothesis import strategies as st

    from tests import fuzz_strategies as fz

    prefix = f"/t/{plan.tenant}/"

    def csrf(fields: dict[str, str]) -> tuple[dict[str, str], tuple[str, str]]:
        secret = "a" * 32
        return {"csrfmiddlewaretoken": secret, **fields}, ("Cookie", f"csrftoken={secret}")

    def form(family, path, fields, ctype, authorization, raw, method="POST") -> Request:
        fields, cookie = csrf(fields)
        headers = [("Content-Type", ctype), cookie] + ([("Authorization", authorization)] if authorization else [])
        body = fz.form_body(fields) if raw is None else fz.form_with_raw_bytes(fields, *raw)
        return Request(family, method, path, headers, body)

    def mcp(body, headers, auth, raw) -> Request:
        sent: dict[str, Any] = {**MCP_JSON, **headers}
        if auth != "none":
            sent["Authorization"] = f"Bearer {plan.token if auth == 'valid' else 'x' * 40}"
        if raw is not None:
            name, value = raw
            sent[name] = (b"Bearer " if name == "Authorization" else b"") + value
        return Request("mcp", "POST", prefix + "mcp", list(sent.items()), body)

    def token(fields, grant, ctype, authorization, real_client, raw) -> Request:
        fields = {"grant_type": grant, **fields}
        if real_client:
            fields.setdefault("client_id", plan.client_id)
        return form("token", prefix + "token/", fields, ctype, authorization, raw)

    def revoke(endpoint, fields, ctype, authorization, real_token, method, raw) -> Request:
        if real_token:
            fields.setdefault("token", plan.token)
        if method == "GET":
            return Request("revoke_introspect", "GET", prefix + endpoint, [("Authorization", authorization or "")])
        return form("revoke_introspect", prefix + endpoint, fields, ctype, authorization, raw)

    def login(fields, ctype, query, raw) -> Request:
        path = fz.capped(prefix + "login/" + ("?" + fz.form_body(query).decode() if query else ""))
        return form("login", path, fields, ctype, None, raw)

    def authorize(overrides, post, keep_redirect) -> Request:
        base = {"response_type": "code", "client_id": plan.client_id, "redirect_uri": plan.redirect_uri,
                "scope": "crm.read", "state": "st", "code_challenge": "c" * 43, "code_challenge_method": "S256",
                "prompt": "consent"}
        if keep_redirect:
            overrides.pop("redirect_uri", None)
        fields = {**base, **overrides}
        cookie = ("Cookie", plan.cookies)
        if post:
            body = fz.form_body({"csrfmiddlewaretoken": plan.csrf, **fields})
            headers = [cookie, ("Content-Type", "application/x-www-form-urlencoded"), ("Referer", plan.base)]
            return Request("authorize", "POST", prefix + "authorize/", headers, body)
        return Request("authorize", "GET", fz.capped(prefix + "authorize/?" + fz.form_body(fields).decode()), [cookie])

    def routing(slug, rest, host, method) -> Request:
        path = "/t/" + fz.form_value(slug) + "/" + quote(rest, safe="/", errors="surrogatepass")
        headers = [("Host", host)] if host is not None else []
        return Request("routing", method, fz.capped(path), headers)

    def registration(metadata, raw, invalid) -> Request:
        document = {"redirect_uris": ["http://127.0.0.1:9/cb"], **metadata}
        if raw is not None:
            body = raw
        elif invalid is not None:
            body = fz.json_with_raw_bytes(document, *invalid)
        else:
            body = json.dumps(document).encode()
        return Request("registration", "POST", prefix + "register/", [("Content-Type", "application/json")], body)

    def bodies(target, size, mode, filler) -> Request:
        path, ctype = target
        if mode == "oversize":
            size += int(os.environ.get("REQUEST_BODY_DRAIN_BYTES", 4 * 1024 * 1024))
        body = (filler * size)[:size]
        headers = [("Content-Type", ctype)]
        chunked, reader = mode == "chunked", mode in ("chunked", "oversize")
        return Request("bodies", "POST", prefix + path, headers, body, chunked=chunked, reader=reader)

    return {
        "mcp": st.builds(mcp, fz.mcp_body, fz.mcp_headers, st.sampled_from(["none", "valid", "bogus"]), fz.raw_header),
        "token": st.builds(
            token, fz.field_dict(fz.TOKEN_FIELDS), st.one_of(fz.grant_type, fz.nasty), fz.content_type,
            fz.credentials, st.booleans(), fz.raw_form_insert,
        ),
        "revoke_introspect": st.builds(
            revoke, st.sampled_from(["revoke_token/", "introspect/"]), fz.field_dict(fz.TOKEN_FIELDS),
            fz.content_type, fz.credentials, st.booleans(), st.sampled_from(["POST", "POST", "GET"]),
            fz.raw_form_insert,
        ),
        "login": st.builds(
            login, fz.field_dict(["username", "password", "next"]), fz.content_type,
            st.dictionaries(st.sampled_from(["next", "x"]), fz.nasty, max_size=2), fz.raw_form_insert,
        ),
        "authorize": st.builds(
            authorize, st.dictionaries(st.sampled_from(fz.AUTHORIZE_FIELDS), fz.authorize_value, max_size=5),
            st.booleans(), st.booleans(),
        ),
        "routing": st.builds(
            routing,
            st.one_of(fz.nasty, st.sampled_from([plan.tenant, "globex", "ACME", "pg_catalog", "public", ""])),
            st.one_of(st.sampled_from(["healthz", "mcp", "login/", "token/", "authorize/", "register/"]), fz.nasty),
            st.one_of(st.none(), fz.printable, st.sampled_from(["bad host!", "a" * 300, "[::1", "127.0.0.1:99999"])),
            st.sampled_from(["GET", "POST", "OPTIONS", "HEAD"]),
        ),
        "registration": st.builds(
            registration,
            st.dictionaries(st.one_of(st.sampled_from(fz.REGISTRATION_FIELDS), fz.nasty), fz.json_value, max_size=6),
            st.one_of(st.none(), fz.deep, fz.deep_object),
            st.one_of(st.none(), st.tuples(fz.raw_invalid, st.integers(0, 64))),
        ),
        "bodies": st.builds(
            bodies,
            st.sampled_from([("mcp", "application/json"), ("token/", "application/x-www-form-urlencoded"),
                             ("login/", "application/x-www-form-urlencoded"), ("register/", "application/json"),
                             ("no-such-page/", "application/octet-stream"), ("mcp", "text/plain")]),
            st.sampled_from([70 * 1024, 1024 * 1024 + 1, 2 * 1000 * 1000, 3 * 1000 * 1000]),
            st.sampled_from(["plain", "plain", "plain", "chunked", "oversize"]),
            st.sampled_from([b"x", b"{", b"a=b&", b"\xed\xa0\x80"]),
        ),
    }


def run_share(plan: Plan, share: dict[str, int], seed: int) -> dict:
    """Send ``share[family]`` generated requests of each family over one kept-alive connection."""
    tally = Tally()
    sender = Sender(plan.base, tally)
    families = strategies(plan)
    for family, count in share.items():
        goal = tally.by_family[family] + count
        attempt = 0
        while tally.by_family[family] < goal:
            _driver(families[family], sender, family, goal, seed * 1000 + attempt)()
            attempt += 1
    return {
        "sent": tally.sent, "statuses": dict(tally.statuses), "by_family": dict(tally.by_family),
        "server_errors": tally.server_errors, "no_answer": tally.no_answer, "connections": tally.connections,
        "unsendable": tally.unsendable,
    }


def _driver(strategy: Any, sender: Sender, family: str, goal: int, seed: int) -> Any:
    """A hypothesis run that sends each generated request until ``family`` has ``goal`` requests."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    remaining = goal - sender.tally.by_family[family]

    @with_seed(seed)
    @settings(
        max_examples=remaining, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(request=strategy)
    def drive(request: Request) -> None:
        if sender.tally.by_family[family] < goal:
            sender.send(request)

    return drive


def _job(args: tuple[Plan, dict[str, int], int]) -> dict:
    return run_share(*args)


# --- set-up: a client, a signed-in browser, a token -------------------------------------------------


def sign_in(base: str, tenant_slug: str, email: str, password: str) -> Plan:
    from probe.oauth_flow import Browser, Tenant, obtain_tokens, register

    tenant = Tenant(f"{base}/t/{tenant_slug}", tenant_slug)
    client = register(tenant, client_name="fuzz_run")
    browser = Browser(tenant, email, password)
    browser.login()
    token = obtain_tokens(browser, client, scope="crm.read crm.write")["access_token"]
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies.jar)
    csrf = next((c.value for c in browser.http.cookies.jar if c.name == "csrftoken"), "a" * 32)
    return Plan(base, tenant_slug, token, client.client_id, client.redirect_uri, cookies, csrf)


def demo_password() -> str:
    from config.dev_secrets import read_env_file

    return os.environ.get("DEMO_MEMBER_PASSWORD") or read_env_file(ROOT / "var" / "dev.env").get(
        "DEMO_MEMBER_PASSWORD", ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--email", default="member@acme.example")
    parser.add_argument("--password", default=None, help="default: DEMO_MEMBER_PASSWORD (var/dev.env)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2, help="processes, each with its own connection and seed")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    plan = sign_in(args.base_url.rstrip("/"), args.tenant, args.email, args.password or demo_password())
    per_family = args.requests // len(FAMILIES)
    shares: list[dict[str, int]] = [{} for _ in range(args.jobs)]
    for index, family in enumerate(FAMILIES):
        count = per_family + (1 if index < args.requests - per_family * len(FAMILIES) else 0)
        for job in range(args.jobs):
            shares[job][family] = count // args.jobs + (1 if job < count % args.jobs else 0)
    print(f"fuzz_run: {args.requests} requests against {args.base_url}, {args.jobs} jobs, seed {seed}", flush=True)
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(_job, [(plan, share, seed + job) for job, share in enumerate(shares)])
    tally = Tally()
    for result in results:
        tally.merge(result)
    elapsed = time.monotonic() - started
    print(f"sent {tally.sent} requests in {elapsed:.0f} s over {tally.connections} connections"
          f" ({tally.unsendable} generated requests http.client would not write were skipped)")
    print("by family: " + ", ".join(f"{name} {tally.by_family[name]}" for name in FAMILIES))
    print("by status: " + ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items())))
    print(f"5xx answers: {len(tally.server_errors)}")
    for line in tally.server_errors[:10]:
        print(f"  {line}")
    print(f"requests without an HTTP answer: {len(tally.no_answer)}")
    for line in tally.no_answer[:10]:
        print(f"  {line}")
    return 1 if tally.server_errors or tally.no_answer else 0


if __name__ == "__main__":
    sys.exit(main())
