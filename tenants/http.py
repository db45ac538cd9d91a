"""The client's network address, one rule for the whole platform (login lockout, rate limits), and
the bucket its limits count it in.

Without ``BEHIND_PROXY`` the address is the TCP peer (``REMOTE_ADDR``) and ``X-Forwarded-For`` is
ignored: any client can send that header. With ``BEHIND_PROXY`` the platform sits behind exactly one
trusted reverse proxy that appends the address it saw to ``X-Forwarded-For``; the right-most entry
is that address. Entries to its left were sent by the client and are never trusted.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 (a bucket name for a missing/invalid peer address, never bound)


def _valid(candidate: str) -> str | None:
    try:
        return str(ipaddress.ip_address(candidate.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str:
    """The client's IP address as text (``UNKNOWN_ADDRESS`` when the server gives none)."""
    return address_of(*peer(request))


def peer(request: HttpRequest) -> tuple[str, str]:
    """What ``client_address`` reads, as sent: the TCP peer and the ``X-Forwarded-For`` header."""
    return request.META.get("REMOTE_ADDR") or "", request.META.get("HTTP_X_FORWARDED_FOR", "")


def address_of(remote_addr: str, forwarded_for: str) -> str:
    """``client_address`` from the two values ``peer`` reads."""
    if settings.BEHIND_PROXY:
        hops = [hop for hop in forwarded_for.split(",") if hop.strip()]
        if hops and (forwarded := _valid(hops[-1])):
            return forwarded
    return _valid(remote_addr) or UNKNOWN_ADDRESS


def address_bucket(request: HttpRequest) -> str:
    """The address the per-address limits count the client under (login lockout and limits, token
    endpoint, registration): an IPv4 address itself; for IPv6 its /64 network, written as an address
    (``2001:db8:1:2::``), because one host or subscriber is routinely given a whole /64 and could
    otherwise take a fresh bucket for every attempt. An IPv4-mapped address counts as the IPv4 one."""
    address = ipaddress.ip_address(client_address(request))
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    return str(address)
