"""What django-tenants' TenantSubfolderMiddleware costs per request, against tenants.middleware: both
resolve the same tenant URLs in process with the tenant lookup stubbed out, so only the routing is
measured (django-tenants clears the URL caches and builds a prefixed URLconf per request; ours
resolves against one cached URLconf and moves the prefix into SCRIPT_NAME)."""

from __future__ import annotations

from bench.common import bench_parser, median_ms, seconds, setup_django

PATHS = ["/t/acme/mcp", "/t/acme/healthz", "/t/acme/authorize/", "/t/acme/.well-known/oauth-authorization-server"]


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    setup_django(migrate=False, database=False)
    from django.conf import settings
    from django.urls import clear_url_caches, get_resolver, reverse, set_urlconf
    from django_tenants.urlresolvers import get_subfolder_urlconf

    from tenants.models import Tenant
    from tenants.routing import split_tenant_path

    def django_tenants_style(tenant: Tenant, path: str) -> None:  # TenantSubfolderMiddleware + resolution
        clear_url_caches()
        tenant.domain_subfolder = "acme"
        urlconf = get_subfolder_urlconf(tenant)
        set_urlconf(urlconf)
        get_resolver(urlconf).resolve(path)
        reverse("oauth2_provider:token", urlconf=urlconf)

    def script_prefix_style(tenant: Tenant, path: str) -> None:
        set_urlconf(settings.ROOT_URLCONF)
        get_resolver(settings.ROOT_URLCONF).resolve(split_tenant_path(path)[1])
        reverse("oauth2_provider:token", urlconf=settings.ROOT_URLCONF)

    def measure(fn, n: int) -> float:
        return median_ms([seconds(fn, tenant, PATHS[i % len(PATHS)]) for i in range(n)]) * 1000  # µs

    settings.TENANT_SUBFOLDER_PREFIX = "t"  # what TenantSubfolderMiddleware requires
    tenant = Tenant(schema_name="acme", name="Acme")
    for fn in (django_tenants_style, script_prefix_style):  # warm up
        measure(fn, 50)
    dt, ours = measure(django_tenants_style, args.requests), measure(script_prefix_style, args.requests)
    print(f"median routing cost per request over {args.requests} requests")
    print(f"  django-tenants subfolder (new URLconf + cleared caches): {dt:8.1f} µs")
    print(f"  script-prefix middleware (one cached URLconf):          {ours:8.1f} µs")
    print(f"  ratio: {dt / ours:.1f}x")
