from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler


def free_port() -> int:
    """A loopback port nothing listens on right now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answer_json(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    """Answer a test server's request with this JSON body."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
