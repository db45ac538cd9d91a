"""The client's network address, one rule for the whole platform (login lockout, rate limits).

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
    if settings.BEHIND_PROXY:
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if hops and (forwarded := _valid(hops[-1])):
            return forwarded
    return _valid(request.META.get("REMOTE_ADDR") or "") or UNKNOWN_ADDRESS
