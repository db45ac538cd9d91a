"""A tiny, fast OAuth token endpoint on loopback for the refresh benchmark and `make chaos`.

Refresh tokens look like ``rt.<account>.<generation>`` and rotate on every use. The current token is
accepted; so is the previous one (a grace window, as many providers allow), which is how a refresh
whose answer was lost (worker killed after the provider answered) shows up here: as a *repeat*.
Counts per account are kept so callers can check "exactly once".

Run: ``python bench/loopback_provider.py [delay_ms]``; prints ``{"url": ...}`` on stdout.
  POST /token        grant_type=refresh_token&refresh_token=...
  POST /revoke       RFC 7009, always 200
  GET  /stats        {"refreshes": n, "repeats": n, "rejected": n, "accounts": n, "max_per_account": n,
                      "token_requests": n, "fault_answers": n}
  GET  /current?a=1  {"token": current refresh token of account 1}
  POST /reset        forget everything (the configuration and a fault too)
  POST /config?expires_in=300   the lifetime of the access tokens it issues (default 3600)
  POST /fault?mode=M&seconds=S[&retry_after=R]   misbehave for S seconds (``make chaos``):
       429           every token request answered 429 with Retry-After: R
       drip          the refresh is done (rotated), then the answer sent one byte every 2 s
       garbage       200 with a body of wrong types nested 3,000 deep (nothing rotated)
       garbage_rotated   rotated, then 200 with the new refresh token and an unusable access token
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
GENERATION: dict[str, int] = {}
COUNTS: dict[str, int] = {}
STATS = {"refreshes": 0, "repeats": 0, "rejected": 0, "revocations": 0, "token_requests": 0, "fault_answers": 0}
DELAY = 0.0
CONFIG = {"expires_in": 3600}
FAULT = {"mode": "", "until": 0.0, "retry_after": "60"}
GARBAGE = b'{"access_token": 42, "expires_in": "soon", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"


def refresh(token: str) -> dict | None:
    try:
        _, account, generation = token.split(".")
        gen = int(generation)
    except ValueError:
        return None
    with LOCK:
        current = GENERATION.get(account, 0)
        if gen not in (current, current - 1):
            STATS["rejected"] += 1
            return None
        if gen == current - 1:
            STATS["repeats"] += 1
        GENERATION[account] = current + 1
        COUNTS[account] = COUNTS.get(account, 0) + 1
        STATS["refreshes"] += 1
        return {
            "access_token": secrets.token_urlsafe(24),
            "refresh_token": f"rt.{account}.{current + 1}",
            "token_type": "Bearer",
            "expires_in": CONFIG["expires_in"],
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: object) -> None:
        pass

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fault(self) -> str:
        with LOCK:
            if FAULT["mode"] and time.monotonic() < FAULT["until"]:
                STATS["fault_answers"] += 1
                return FAULT["mode"]
        return ""

    def drip(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        try:
            for i in range(len(data)):
                time.sleep(2)
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up at its deadline

    def token(self, form: dict[str, str]) -> None:
        with LOCK:
            STATS["token_requests"] += 1
        if DELAY:
            time.sleep(DELAY)
        fault = self.fault()
        if fault == "429":
            data = b'{"error": "rate_limited"}'
            self.send_response(429)
            self.send_header("Retry-After", FAULT["retry_after"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if fault == "garbage":
            self.send_response(200)
            self.send_header("Content-Length", str(len(GARBAGE)))
            self.end_headers()
            self.wfile.write(GARBAGE)
            return
        tokens = refresh(form.get("refresh_token", "")) if form.get("grant_type") == "refresh_token" else None
        if not tokens:
            self.answer(400, {"error": "invalid_grant"})
        elif fault == "drip":
            self.drip(tokens)
        elif fault == "garbage_rotated":
            self.answer(200, {"refresh_token": tokens["refresh_token"], "access_token": ["not", "a", "token"]})
        else:
            self.answer(200, tokens)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        url = urlsplit(self.path)
        path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == "/token":
            self.token(form)
        elif path == "/revoke":
            with LOCK:
                STATS["revocations"] += 1
            self.answer(200, {})
        elif path == "/reset":
            with LOCK:
                GENERATION.clear()
                COUNTS.clear()
                STATS.update(dict.fromkeys(STATS, 0))
                CONFIG["expires_in"] = 3600
                FAULT.update(mode="", until=0.0)
            self.answer(200, {})
        elif path == "/config":
            CONFIG["expires_in"] = int(query.get("expires_in", "3600"))
            self.answer(200, CONFIG)
        elif path == "/fault":
            with LOCK:
                FAULT.update(
                    mode=query.get("mode", ""),
                    until=time.monotonic() + float(query.get("seconds", "0")),
                    retry_after=query.get("retry_after", "60"),
                )
            self.answer(200, {})
        else:
            self.answer(404, {})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/stats":
            with LOCK:
                body = {**STATS, "accounts": len(COUNTS), "max_per_account": max(COUNTS.values(), default=0)}
                body["accounts_refreshed_twice"] = sum(1 for c in COUNTS.values() if c > 1)
            self.answer(200, body)
        elif url.path == "/current":
            account = parse_qs(url.query).get("a", [""])[0]
            with LOCK:
                self.answer(200, {"token": f"rt.{account}.{GENERATION.get(account, 0)}"})
        else:
            self.answer(404, {})


def main() -> None:
    global DELAY
    DELAY = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
