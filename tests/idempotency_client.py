"""``tools/call`` with an idempotency key in ``_meta``, over httpx or over a raw socket that hangs up
before the answer arrives (a response lost after commit)."""

from __future__ import annotations

import itertools
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

from declarations.idempotency import IDEMPOTENCY_META_KEY
from tests.mcp_raw import MODERN

_ids = itertools.count(10_000)


def _request(name: str, arguments: dict[str, Any], key: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    meta: dict[str, Any] = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "idempotency-test", "version": "1"},
    }
    if key is not None:
        meta[IDEMPOTENCY_META_KEY] = key
    body = {
        "jsonrpc": "2.0",
        "id": next(_ids),
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta},
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    return body, headers


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
