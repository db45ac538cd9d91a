"""Every request on a kept-alive connection gets an answer, through real gunicorn with the platform's
own configuration (``config.gunicorn``, gthread): after a body the platform refused without reading
it (the MCP endpoint's 413, a 404, Django's 400 for a form over its size limit), the next request on
the same connection is answered; a body too large to drain, or chunked, is answered with
``Connection: close`` and the connection is closed, on purpose (``config.body_drain``)."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.body_drain import DRAIN_MAX_BYTES
from probe.ready import stop_process, wait_until_up
from tests.database import database_url
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent
TWO_MB = 2 * 1000 * 1000
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def gunicorn(live_server_url) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "CONN_MAX_AGE": "0", "GUNICORN_THREADS": "2"}
    command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "1", "--config", "python:config.gunicorn", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        assert wait_until_up(f"http://127.0.0.1:{port}/t/acme/healthz"), "gunicorn did not start"
        yield port
    finally:
        stop_process(server)


def send(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None, **headers):
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response


@pytest.mark.parametrize(
    ("path", "content_type", "size", "status"),
    [
        ("/t/acme/mcp", "application/json", TWO_MB, 413),  # over MCP_MAX_BODY_BYTES, refused before reading
        ("/t/acme/no-such-page/", "application/octet-stream", TWO_MB, 404),
        ("/t/acme/login/", "application/x-www-form-urlencoded", 3 * 1000 * 1000, 400),  # DATA_UPLOAD_MAX_MEMORY_SIZE
    ],
)
@pytest.mark.timeout(60)
def test_after_a_refused_body_the_next_request_on_the_connection_is_answered(
    gunicorn, path, content_type, size, status
):
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=20)
    refused = send(connection, "POST", path, b"a=" + b"x" * (size - 2), **{"Content-Type": content_type})
    assert refused.status == status
    assert refused.getheader("Connection") == "keep-alive"
    local = connection.sock.getsockname()
    for _ in range(2):
        answered = send(connection, "GET", "/t/acme/healthz")
        assert answered.status == 200
        assert connection.sock is not None and connection.sock.getsockname() == local  # the same connection
    connection.close()


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The status line and headers of the first answer on ``sock``, and what follows until it closes."""
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.timeout(60)
def test_a_body_too_large_to_drain_or_chunked_closes_the_connection_on_purpose(gunicorn):
    """Beyond ``REQUEST_BODY_DRAIN_BYTES`` the answer says ``Connection: close`` and the server closes
    the connection after it. A client that reads while it sends (curl, browsers) gets the 413; one
    that only reads after sending everything may see the connection reset instead."""
    size = DRAIN_MAX_BYTES + 1
    head = f"POST /t/acme/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {size}"
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=20) as sock:

        def upload() -> None:
            with contextlib.suppress(OSError):  # the server stops reading once it has answered
                sock.sendall(head.encode() + b"\r\n\r\n" + b"x" * size)

        sender = threading.Thread(target=upload)
        sender.start()
        status_and_headers, _ = read_answer(sock)
        sender.join()
    assert status_and_headers.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nConnection: close" in status_and_headers

    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=20)
    chunked = send(connection, "POST", "/t/acme/mcp", iter([b"{", b'"jsonrpc": "2.0"}']), **JSON)
    assert chunked.getheader("Connection") == "close" and chunked.status < 500
    assert connection.sock is None  # http.client saw the close and dropped the socket
    assert send(connection, "GET", "/t/acme/healthz").status == 200  # on a new connection
    connection.close()


def test_keepalive_comes_from_the_environment(monkeypatch):
    import importlib

    import config.gunicorn

    monkeypatch.setenv("GUNICORN_KEEPALIVE", "620")
    assert importlib.reload(config.gunicorn).keepalive == 620
    monkeypatch.delenv("GUNICORN_KEEPALIVE")
    assert importlib.reload(config.gunicorn).keepalive == 2
