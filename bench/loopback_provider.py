"""A tiny, fast OAuth token endpoint on loopback for the refresh benchmark and `make chaos`.

Refresh tokens look like ``rt.<account>.<generation>`` and rotate on every use. The current token is
accepted; so is the previous one (a grace window, as many providers allow), which is how a refresh
whose answer was lost (worker killed after the provider answered) shows up here: as a *repeat*.
Counts per account are kept so callers can check "exactly once".

Run: ``python bench/loopback_provider.py [delay_ms]``; prints ``{"url": ...}`` on stdout.
  POST /token        grant_type=refresh_token&refresh_token=...
  POST /revoke       RFC 7009, always 200
  GET  /stats        {"refreshes": n, "repeats": n, "rejected": n, "accounts": n, "max_per_account": n}
  GET  /current?a=1  {"token": current refresh token of account 1}
  POST /reset        forget everything
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
STATS = {"refreshes": 0, "repeats": 0, "rejected": 0, "revocations": 0}
DELAY = 0.0


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
            "expires_in": 3600,
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

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        path = urlsplit(self.path).path
        if path == "/token":
            if DELAY:
                time.sleep(DELAY)
            tokens = refresh(form.get("refresh_token", "")) if form.get("grant_type") == "refresh_token" else None
            self.answer(200, tokens) if tokens else self.answer(400, {"error": "invalid_grant"})
        elif path == "/revoke":
            with LOCK:
                STATS["revocations"] += 1
            self.answer(200, {})
        elif path == "/reset":
            with LOCK:
                GENERATION.clear()
                COUNTS.clear()
                STATS.update(refreshes=0, repeats=0, rejected=0, revocations=0)
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
