"""A scriptable provider on loopback for the hostile-answer and deadline tests: its token, userinfo
and revocation endpoints answer whatever the test sets (status, headers, raw body bytes), or drip
(headers at once, then one byte every ``drip_seconds``). It counts requests per path and the
connections it holds open, so tests count calls at the provider, not in our database."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN, USERINFO, REVOKE, API = "/token", "/userinfo", "/revoke", "/api/crm/contacts"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    drip_seconds: float = 0.0  # > 0: send the headers, then the body one byte at a time
    drip_headers: bool = False  # with drip_seconds: the headers too, one byte at a time


@dataclass
class StubProvider:
    url: str
    answers: dict[str, Answer] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)
    held: int = 0  # connections being answered right now
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def answer(self, path: str, answer: Answer) -> None:
        self.answers[path] = answer

    def holding(self) -> int:
        with self.lock:
            return self.held


def _handler(stub: StubProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with stub.lock:
                stub.hits[path] += 1
                stub.held += 1
            try:
                answer = stub.answers.get(path, Answer(status=404))
                head = [f"HTTP/1.1 {answer.status} Stub"]
                head += [f"{name}: {value}" for name, value in answer.headers.items()]
                head += [f"Content-Length: {len(answer.body)}", "", ""]
                raw_head = "\r\n".join(head).encode()
                if answer.drip_seconds <= 0:
                    self.wfile.write(raw_head + answer.body)
                    return
                dripped = (raw_head + answer.body) if answer.drip_headers else answer.body
                if not answer.drip_headers:
                    self.wfile.write(raw_head)
                    self.wfile.flush()
                for i in range(len(dripped)):
                    if stub.stop.wait(answer.drip_seconds):
                        return
                    self.wfile.write(dripped[i : i + 1])
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its deadline)
            finally:
                with stub.lock:
                    stub.held -= 1

        do_GET = do_POST = do_DELETE = _serve

    return Handler


@contextmanager
def stub_provider() -> Iterator[StubProvider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # handler set below, once the stub exists
    server.daemon_threads = True
    stub = StubProvider(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.stop.set()
        server.shutdown()
        server.server_close()


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
