"""``tools/call`` with an idempotency key in ``_meta``, over httpx or over a raw socket that hangs up
before the answer arrives (a response lost after commit)."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

from declarations.idempotency import IDEMPOTENCY_META_KEY
from probe.mcp_wire import modern_message


def _request(name: str, arguments: dict[str, Any], key: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    meta = {IDEMPOTENCY_META_KEY: key} if key is not None else None
    return modern_message(
        "tools/call", {"name": name, "arguments": arguments}, meta=meta, client_name="idempotency-test"
    )


def keyed_call(url: str, token: str, name: str, arguments: dict[str, Any], key: str | None) -> httpx.Response:
    body, headers = _request(name, arguments, key)
    return httpx.post(url, json=body, headers={**headers, "Authorization": f"Bearer {token}"}, timeout=30)


def call_and_hang_up(url: str, token: str, name: str, arguments: dict[str, Any], key: str) -> None:
    """Send the whole request, then close the connection without reading a byte of the answer."""
    body, headers = _request(name, arguments, key)
    payload = json.dumps(body).encode()
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Authorization: Bearer {token}",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_RDWR)  # the client is gone before the server answers
