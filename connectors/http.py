"""Outbound HTTP to providers, SSRF-safe: https only (loopback http in development only), every
resolved address must be public (loopback too in development), the connection goes to the address
that was checked (no second DNS lookup), no redirects, a total deadline (connect, TLS, headers and
body together: ``_Watchdog``) and a size cap.

The URL and address rule is ``egress.rules`` (DOT's CIMD fetcher's address rule), which the identity
providers' client (``identity.outbound``) follows too.

Connections are kept alive per thread (``_connection``): the proactive refresh calls one token
endpoint thousands of times a minute, and a new TCP (and TLS) connection per call cost more than the
call. A connection is keyed by the *checked* address (and the host name for TLS and ``Host``), so the
address rule still holds for every request: a name that now resolves elsewhere gets another
connection or a refusal.
A connection idle for more than ``KEEPALIVE_IDLE_SECONDS`` is not reused (servers close idle
keep-alive connections after a few seconds; a request racing that close would fail without an answer,
which the refresh must treat as "the provider may have acted").
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import http.client
import itertools
import json
import os
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection

from egress import rules

_HEADER_BREAK = re.compile(r"[\r\n\x00]")
KEEPALIVE_IDLE_SECONDS = 2.0
MAX_POOLS_PER_THREAD = 16


class OutboundError(Exception):
    """A refused or failed outbound call. ``code`` is stable; ``transient`` says a retry may help."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None (also when nested too deeply: ``connectors.answers`` validates
        provider answers field by field with tighter bounds)."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


def loopback_allowed() -> bool:
    return bool(settings.CONNECTORS_ALLOW_LOOPBACK_HTTP) and not settings.PRODUCTION


def _refused(code: str, message: str) -> OutboundError:
    return OutboundError(code, message, transient=code == "unresolvable")


def check_url(url: str) -> None:
    """Refuse a provider URL that is not https (or, in development, loopback http)."""
    rules.check_url(url, loopback_ok=loopback_allowed(), error=_refused)


class _Watchdog:
    """One thread per process that ends calls at their deadline: it shuts the call's socket down,
    which wakes whatever read or write is blocked on it (headers trickling in, a body dripping one
    byte at a time: a per-read timeout never fires on those). Arming and disarming are a heap push
    and a flag under a lock; the shutdown happens under the same lock, so it never touches a socket
    after its call has ended."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._seq = itertools.count()
        self._pid = 0

    def arm(self, deadline: float, target: Callable[[], socket.socket | None]) -> _Alarm:
        alarm = _Alarm(target)
        with self._cond:
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._pid = os.getpid()
                self._heap.clear()
                threading.Thread(target=self._run, name="connectors-deadlines", daemon=True).start()
            heapq.heappush(self._heap, (deadline, next(self._seq), alarm))
            if self._heap[0][2] is alarm:
                self._cond.notify()
        return alarm

    def disarm(self, alarm: _Alarm) -> bool:
        """Stop watching; True if the deadline fired first."""
        with self._cond:
            alarm.armed = False
            return alarm.fired

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and not self._heap[0][2].armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, alarm = heapq.heappop(self._heap)
                alarm.fired, alarm.armed = True, False
                sock = alarm.target()
                if sock is not None:
                    with contextlib.suppress(OSError):  # the plain socket's shutdown, also for TLS
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@dataclass
class _Alarm:
    target: Callable[[], socket.socket | None]
    armed: bool = True
    fired: bool = False


_watchdog = _Watchdog()
_local = threading.local()
ConnKey = tuple[bool, str, int, str]


def _connection(key: ConnKey, timeout: float) -> HTTPConnection:
    """This thread's kept-alive connection for (https, checked address, port, host), or a new one."""
    conns: OrderedDict[ConnKey, tuple[HTTPConnection, float]] = _local.__dict__.setdefault("conns", OrderedDict())
    found = conns.pop(key, None)
    if found is not None:
        conn, last_used = found
        if time.monotonic() - last_used <= KEEPALIVE_IDLE_SECONDS and conn.is_connected:
            conn.timeout = timeout
            return conn
        conn.close()
    https, ip, port, host = key
    if https:
        return HTTPSConnection(
            ip, port, timeout=timeout, server_hostname=host, ssl_context=ssl.create_default_context()
        )
    return HTTPConnection(ip, port, timeout=timeout)


def _keep(key: ConnKey, conn: HTTPConnection) -> None:
    conns = _local.__dict__.setdefault("conns", OrderedDict())
    conns[key] = (conn, time.monotonic())
    while len(conns) > MAX_POOLS_PER_THREAD:
        _, (oldest, _) = conns.popitem(last=False)
        oldest.close()


def _exchange(
    conn: HTTPConnection,
    alarm: _Alarm,
    request: tuple[str, str, str | None, dict[str, str]],
    max_bytes: int,
) -> tuple[Response, bool]:
    """One request on ``conn``; the response and whether the connection can be kept."""
    method, path, body, headers = request
    if conn.sock is None:
        conn.connect()  # bounded by its own timeout; the alarm cannot reach a socket not made yet
        if alarm.fired:
            raise TimeoutError("the deadline passed while connecting")
    conn.request(method, path, body=body, headers=headers, preload_content=False)
    raw = conn.getresponse()
    data = raw.read(max_bytes + 1, decode_content=True)
    if len(data) > max_bytes:
        raise OutboundError("too_large", "the provider's response exceeds the size limit")
    reusable = raw.closed and conn.sock is not None  # read to its end, and no "Connection: close"
    return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, data), reusable


def request(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    basic_auth: tuple[str, str] | None = None,
    bearer: str | None = None,
) -> Response:
    """One call, ended at ``CONNECTORS_HTTP_TIMEOUT_SECONDS`` whatever the provider does: connect,
    TLS, headers and body together (a per-read timeout alone lets a provider that sends a byte
    every few seconds hold the calling thread for as long as it likes)."""
    check_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    all_headers = {"Host": parts.netloc, "Accept": "application/json", "User-Agent": "tenant-oauth-mcp"}
    all_headers.update(headers or {})
    body = None
    if form is not None:
        body = urlencode(form)
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    if json_body is not None:
        body = json.dumps(json_body)
        all_headers["Content-Type"] = "application/json"
    if basic_auth is not None:
        pair = f"{quote(basic_auth[0], safe='')}:{quote(basic_auth[1], safe='')}"  # RFC 6749 2.3.1
        all_headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    if bearer is not None:
        all_headers["Authorization"] = f"Bearer {bearer}"
    if any(_HEADER_BREAK.search(v) for v in all_headers.values()):
        raise OutboundError("invalid_request", "a header value would break the request")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    budget = float(settings.CONNECTORS_HTTP_TIMEOUT_SECONDS)
    max_bytes = int(settings.CONNECTORS_HTTP_MAX_BYTES)
    deadline = time.monotonic() + budget
    last: OutboundError | None = None
    for ip in rules.checked_addresses(host, port, loopback_ok=loopback_allowed(), error=_refused):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        key = (https, ip, port, host)
        conn = _connection(key, remaining)
        alarm = _watchdog.arm(deadline, lambda conn=conn: conn.sock)
        reusable, last = False, None
        try:
            response, reusable = _exchange(conn, alarm, (method, path, body, all_headers), max_bytes)
        except OutboundError:
            raise
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
            timed_out = isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError))
            last = OutboundError("connection_failed", f"could not reach {host!r}", transient=True)
            if timed_out:
                last = OutboundError("timeout", f"{host!r} did not answer in time", transient=True)
            last.__cause__ = exc
        finally:
            fired = _watchdog.disarm(alarm)
            if reusable and not fired:
                _keep(key, conn)
            else:
                conn.close()
        if fired:
            raise OutboundError("timeout", f"{host!r} did not answer in time", transient=True)
        if last is None:
            return response
    raise last or OutboundError("timeout", f"{host!r} did not answer in time", transient=True)
