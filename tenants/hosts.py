"""Which ``Host`` a request may name in development mode (DNS-rebinding protection).

A page on ``evil.example`` whose name the attacker points at 127.0.0.1 makes the browser send
``Host: evil.example`` (and ``Origin: http://evil.example``) to the platform on loopback; refusing
every host that is not ours ends that. Production lists its hosts in ``ALLOWED_HOSTS`` and Django's
own check refuses the rest. Development cannot: tenant domains are added at run time, so Django's
list is ``*`` there and this module checks each request instead, against loopback names (which no
attacker's page can be served from), ``PUBLIC_BASE_URL``'s host, ``ALLOWED_HOSTS`` when set
(``settings.DEVELOPMENT_HOSTS``), and the tenant domains in the database (one query, only for a
host none of those match).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from tenants.selectors import tenant_by_host


def _is_loopback(domain: str) -> bool:
    if domain == "localhost" or domain.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(domain.strip("[]")).is_loopback
    except ValueError:
        return False


def _public_host() -> str:
    hostname = urlsplit(settings.PUBLIC_BASE_URL).hostname or ""
    return f"[{hostname}]" if ":" in hostname else hostname


def check_development_host(request: HttpRequest) -> None:
    """Raise ``DisallowedHost`` (Django answers 400) for a host development does not serve."""
    listed = settings.DEVELOPMENT_HOSTS
    if listed is None:  # production: ALLOWED_HOSTS, checked by Django whenever the host is read
        return
    domain, _ = split_domain_port(request.get_host())
    patterns = [_public_host(), *listed, *(host for host in settings.ALLOWED_HOSTS if host != "*")]
    if _is_loopback(domain) or validate_host(domain, patterns) or tenant_by_host(domain) is not None:
        return
    raise DisallowedHost(f"Invalid HTTP_HOST header: {domain!r}. Development serves loopback names, "
                         "PUBLIC_BASE_URL's host, ALLOWED_HOSTS and tenant domains only.")
