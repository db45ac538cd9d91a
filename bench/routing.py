"""What django-tenants' TenantSubfolderMiddleware costs per request, against tenants.middleware.

    .venv/bin/python bench/routing.py [--requests 2000]

Both middlewares run in-process on the same request (GET /t/acme/healthz-like resolution of the tenant
URLconf) with the tenant lookup stubbed out, so what is measured is the routing itself: django-tenants
clears the URL caches and builds a new prefixed URLconf module (so a new resolver) on every request;
ours resolves against one cached URLconf and moves the prefix into SCRIPT_NAME.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
from config.dev_secrets import ensure_dev_env  # noqa: E402

for _k, _v in ensure_dev_env().items():
    os.environ.setdefault(_k, _v)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")  # never queried here

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.urls import clear_url_caches, get_resolver, reverse, set_urlconf  # noqa: E402
from django_tenants.urlresolvers import get_subfolder_urlconf  # noqa: E402

from tenants.models import Tenant  # noqa: E402
from tenants.routing import split_tenant_path  # noqa: E402

PATHS = ["/t/acme/mcp", "/t/acme/healthz", "/t/acme/authorize/", "/t/acme/.well-known/oauth-authorization-server"]


def django_tenants_style(tenant: Tenant, path: str) -> None:
    # what TenantSubfolderMiddleware.process_request + URL resolution do for one request
    clear_url_caches()
    tenant.domain_subfolder = "acme"
    urlconf = get_subfolder_urlconf(tenant)
    set_urlconf(urlconf)
    get_resolver(urlconf).resolve(path)
    reverse("oauth2_provider:token", urlconf=urlconf)


def script_prefix_style(tenant: Tenant, path: str) -> None:
    _slug, rest = split_tenant_path(path)
    set_urlconf(settings.ROOT_URLCONF)
    get_resolver(settings.ROOT_URLCONF).resolve(rest)
    reverse("oauth2_provider:token", urlconf=settings.ROOT_URLCONF)


def measure(fn, tenant: Tenant, n: int) -> float:
    samples = []
    for i in range(n):
        path = PATHS[i % len(PATHS)]
        start = time.perf_counter()
        fn(tenant, path)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    settings.TENANT_SUBFOLDER_PREFIX = "t"  # what TenantSubfolderMiddleware requires
    tenant = Tenant(schema_name="acme", name="Acme")
    for fn in (django_tenants_style, script_prefix_style):  # warm up
        measure(fn, tenant, 50)
    dt = measure(django_tenants_style, tenant, args.requests)
    ours = measure(script_prefix_style, tenant, args.requests)
    print(f"median routing cost per request over {args.requests} requests")
    print(f"  django-tenants subfolder (new URLconf + cleared caches): {dt:8.1f} µs")
    print(f"  script-prefix middleware (one cached URLconf):          {ours:8.1f} µs")
    print(f"  ratio: {dt / ours:.1f}x")


if __name__ == "__main__":
    main()
