"""The admin renders styled in a real browser: the tenant admin (scope matrix and
every registered model) and the platform admin get Django's admin stylesheet, served by WhiteNoise
from the hashed, compressed files ``collectstatic`` wrote; no empty "not available" section is listed."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context

from tenants.admin_site import tenant_admin_site
from tests.conftest import PASSWORD
from tests.oauth_flow import obtain_tokens, signed_in
from tests.support.admin_browser import assert_styled, sign_in


def test_tenant_admin_scope_matrix_is_styled(live, page, tmp_path):
    sign_in(page, live.tenant_url("acme", "admin/"), "admin@acme.test")
    assert_styled(page)
    index = page.inner_text("#content-main")
    assert "Consent grants" in index and "Scope matrix" in index  # the OAuth section lists its models
    page.screenshot(path=str(tmp_path / "tenant-index.png"), full_page=True)

    page.goto(live.tenant_url("acme", "admin/mcp_tools/toolpolicy/"))
    assert "crm_create_note" in page.inner_text("#result_list")
    assert_styled(page)
    page.screenshot(path=str(tmp_path / "scope-matrix.png"), full_page=True)

    # the stylesheet is the hashed copy, served compressed and cacheable forever
    href = page.eval_on_selector("link[rel=stylesheet][href*='admin/css/base']", "e => e.href")
    # at the host root, not under /t/acme/: the public site serves it (STATIC_URL is absolute)
    assert re.fullmatch(re.escape(live.url) + r"/static/admin/css/base\.[0-9a-f]{12}\.css", href), href
    css = httpx.get(href, headers={"Accept-Encoding": "gzip"}, timeout=20)
    assert css.status_code == 200 and css.headers["content-encoding"] == "gzip"
    assert "immutable" in css.headers["cache-control"] and "--header-bg" in css.text


@pytest.fixture
def admin_pages(live):
    """The pages to open (read from the database before the browser's event loop starts) and a
    platform superuser."""
    from tenants.models import Membership, Tenant

    # a token pair and a consent in acme, so their view pages are opened too
    client, browser = signed_in(live.tenant("acme"), "member@acme.test")
    obtain_tokens(browser, client, scope="crm.read")
    tenant_pages = []
    for model in tenant_admin_site._registry:
        path = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        tenant_pages.append(live.tenant_url("acme", path))
        with schema_context("acme"):
            first = model._default_manager.values_list("pk", flat=True).last()
        if first is not None:
            tenant_pages.append(live.tenant_url("acme", f"{path}{first}/change/"))
    tenant_pages.append(live.tenant_url("acme", "admin/oauth2_provider/application/add/"))
    acme = Tenant.objects.get(schema_name="acme")
    membership = Membership.objects.filter(tenant=acme).first()
    platform_pages = [
        f"{live.url}/admin/{path}"
        for path in (
            "tenants/tenant/",
            f"tenants/tenant/{acme.pk}/change/",
            "tenants/membership/",
            f"tenants/membership/{membership.pk}/change/",
        )
    ]
    User = get_user_model()
    email = f"root-{uuid.uuid4().hex[:8]}@platform.test"
    User.objects.create_superuser(email, PASSWORD)
    yield tenant_pages, platform_pages, email
    # not deleted: deleting a user from the public schema cascades into tenant-only OAuth tables
    User.objects.filter(email=email).update(is_active=False)


def test_every_admin_page_renders_styled(live, admin_pages, page, tmp_path):
    """Each tenant admin page for every registered model, and the platform admin pages this issue
    touched, in the browser."""
    tenant_pages, platform_pages, root = admin_pages
    sign_in(page, live.tenant_url("acme", "admin/"), "admin@acme.test")
    for number, url in enumerate(tenant_pages):
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        assert_styled(page)
        page.screenshot(path=str(tmp_path / f"tenant-{number:02d}.png"))

    sign_in(page, f"{live.url}/admin/", root)
    assert_styled(page)
    page.screenshot(path=str(tmp_path / "platform-index.png"), full_page=True)
    for number, url in enumerate(platform_pages):
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        assert_styled(page)
        page.screenshot(path=str(tmp_path / f"platform-{number:02d}.png"))


@pytest.mark.django_db
def test_static_files_are_served_on_the_platform_host_and_on_a_tenant_domain(client):
    from tenants.models import Domain, Tenant

    Domain.objects.create(tenant=Tenant.objects.get(schema_name="acme"), domain="acme.localhost", is_primary=True)
    for host in ("testserver", "acme.localhost"):
        response = client.get("/static/admin/css/base.css", HTTP_HOST=host)
        assert response.status_code == 200, host
        assert b"--header-bg" in b"".join(response.streaming_content), host
