"""The URL and address rule of every outbound call to a server a tenant names: https only (loopback
http where the caller allows it: development), every address the host resolves to public (DOT's CIMD
rule, ``oauth2_provider.cimd._ip_is_public``: IPv4 embedded in IPv6 forms is judged as IPv4), loopback
too where the caller allows it. The callers connect to a checked address (no second DNS lookup).

A refusal is raised as the caller's error, ``error(code, message)``; the codes are stable:
``invalid_url``, ``insecure_url``, ``unresolvable`` (a retry may help), ``blocked_address``."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from oauth2_provider.cimd import _ip_is_public

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
Error = Callable[[str, str], Exception]


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, loopback_ok: bool, error: Error) -> None:
    """Refuse a URL that is not https (or, where ``loopback_ok``, loopback http)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.username or parts.password or parts.fragment:
        raise error("invalid_url", f"{url!r} is not a usable URL")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback(host) and loopback_ok:
        return
    raise error("insecure_url", f"{url!r} must use https (loopback http only in development)")


def checked_addresses(host: str, port: int, *, loopback_ok: bool, error: Error) -> list[str]:
    """Every address ``host`` resolves to, once all of them have passed the rule."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise error("unresolvable", f"cannot resolve {host!r}") from exc
    ips = [info[4][0] for info in infos]
    if not ips:
        raise error("unresolvable", f"{host!r} has no address")
    for ip in ips:
        if _ip_is_public(ip) or (loopback_ok and is_loopback(ip.split("%", 1)[0])):
            continue
        raise error("blocked_address", f"{host!r} resolves to a non-public address")
    return ips
