"""Outbound HTTP to providers, SSRF-safe: https only (loopback http in development only), every
resolved address must be public (loopback too in development), the connection goes to the address
that was checked (no second DNS lookup), no redirects, a time budget and a size cap.

The address rule is DOT's CIMD fetcher's (``oauth2_provider.cimd._ip_is_public``: IPv4 embedded in
IPv6 forms is judged as IPv4), so both outbound paths of the platform agree.

Connections are kept alive per thread (``_pools``): the proactive refresh calls one token endpoint
thousands of times a minute, and a new TCP (and TLS) connection per call cost more than the call.
A pool is keyed by the *checked* address (and the host name for TLS and ``Host``), so the address
rule still holds for every request: a name that now resolves elsewhere gets another pool or a refusal.
A connection idle for more than ``KEEPALIVE_IDLE_SECONDS`` is not reused (servers close idle
keep-alive connections after a few seconds; a request racing that close would fail without an answer,
which the refresh must treat as "the provider may have acted").
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from django.conf import settings
from oauth2_provider.cimd import _ip_is_public

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
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
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def loopback_allowed() -> bool:
    return bool(settings.CONNECTORS_ALLOW_LOOPBACK_HTTP) and not settings.PRODUCTION


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    """Refuse a provider URL that is not https (or, in development, loopback http)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.username or parts.password or parts.fragment:
        raise OutboundError("invalid_url", f"{url!r} is not a usable endpoint URL")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(host) and loopback_allowed():
        return
    raise OutboundError("insecure_url", f"{url!r} must use https (loopback http only in development)")


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OutboundError("unresolvable", f"cannot resolve {host!r}", transient=True) from exc
    ips = [info[4][0] for info in infos]
    for ip in ips:
        if _ip_is_public(ip):
            continue
        if loopback_allowed() and _is_loopback(ip.split("%", 1)[0]):
            continue
        raise OutboundError("blocked_address", f"{host!r} resolves to a non-public address")
    if not ips:
        raise OutboundError("unresolvable", f"{host!r} has no address", transient=True)
    return ips


_local = threading.local()
PoolKey = tuple[bool, str, int, str]


def _pool(key: PoolKey) -> urllib3.HTTPConnectionPool:
    """This thread's pool for (https, checked address, port, host), created or reused."""
    pools: OrderedDict[PoolKey, tuple[urllib3.HTTPConnectionPool, float]] = _local.__dict__.setdefault(
        "pools", OrderedDict()
    )
    found = pools.pop(key, None)
    if found is not None:
        pool, last_used = found
        if time.monotonic() - last_used <= KEEPALIVE_IDLE_SECONDS:
            return pool
        pool.close()
    https, ip, port, host = key
    if https:
        return urllib3.HTTPSConnectionPool(
            host=ip, port=port, retries=False, maxsize=1, ssl_context=ssl.create_default_context(), server_hostname=host
        )
    return urllib3.HTTPConnectionPool(host=ip, port=port, retries=False, maxsize=1)


def _keep(key: PoolKey, pool: urllib3.HTTPConnectionPool) -> None:
    pools = _local.__dict__.setdefault("pools", OrderedDict())
    pools[key] = (pool, time.monotonic())
    while len(pools) > MAX_POOLS_PER_THREAD:
        _, (oldest, _) = pools.popitem(last=False)
        oldest.close()


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
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    budget = float(settings.CONNECTORS_HTTP_TIMEOUT_SECONDS)
    max_bytes = int(settings.CONNECTORS_HTTP_MAX_BYTES)
    deadline = time.monotonic() + budget
    last: Exception | None = None
    for ip in _addresses(host, port):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        timeout = urllib3.Timeout(connect=remaining, read=remaining, total=remaining)
        key = (https, ip, port, host)
        pool = _pool(key)
        reusable = False
        try:
            raw = pool.urlopen(
                method, path, body=body, headers=all_headers, redirect=False, preload_content=False, timeout=timeout
            )
            try:
                data = raw.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise OutboundError("too_large", "the provider's response exceeds the size limit")
                reusable = True
                return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, data)
            finally:
                raw.release_conn()
        except urllib3.exceptions.TimeoutError as exc:
            last = OutboundError("timeout", f"{host!r} did not answer in time", transient=True)
            last.__cause__ = exc
        except urllib3.exceptions.HTTPError as exc:
            last = OutboundError("connection_failed", f"could not reach {host!r}", transient=True)
            last.__cause__ = exc
        finally:
            if reusable:
                _keep(key, pool)
            else:
                pool.close()
    raise last or OutboundError("timeout", f"{host!r} did not answer in time", transient=True)
