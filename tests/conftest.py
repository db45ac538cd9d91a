"""Shared fixtures: one test database, the tenants created once per session, a live server thread.

Tenant schemas are created once (creating a schema runs every tenant migration, seconds each); each
test then runs in a transaction that is rolled back (``db``), or, for tests that drive the live
server over HTTP, against committed rows that are unique to the test (``live``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connections
from django_tenants.utils import schema_context

from probe.oauth_flow import Tenant  # re-exported by tests.oauth_flow: the tenant the OAuth helpers take

TEST_TENANTS = {"acme": "Acme Corp", "globex": "Globex Corporation"}
PASSWORD = "correct-horse-battery-staple"  # test-only


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb, tmp_path_factory):
    """Always create the test database (pytest-django would skip it when only live-server tests,
    which carry no ``django_db`` mark, are selected), then the tenants, once."""
    from django.conf import settings
    from django.core.management import call_command

    # the production static-files setup (hashed, compressed, served by WhiteNoise) over a fresh copy
    settings.STATIC_ROOT = tmp_path_factory.mktemp("static")
    call_command("collectstatic", "--noinput", verbosity=0)
    from django.test.utils import setup_databases, teardown_databases

    from crm.seed import seed_contacts
    from tenants.services import add_user, create_tenant

    # test-only: a fast hasher, so logging in over HTTP does not dominate the suite's time
    # (the client-secret hasher stays registered, as in production: DOT identifies stored secrets by it)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "oauth.hashers.ClientSecretHasher"]
    settings.OAUTH_DCR_RATE_LIMIT = (100_000, 3600)  # the suite registers many clients from 127.0.0.1
    settings.OAUTH_TOKEN_RATE_LIMIT = (100_000, 60)  # ... and exchanges many tokens (tests/test_logins.py sets
    settings.OAUTH_TOKEN_CLIENT_RATE_LIMIT = (100_000, 60)  # these and the login lockout low where it tests them)
    settings.AXES_FAILURE_LIMIT = 100_000  # and the login limits (tests/test_logins.py sets them low)
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 100_000
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 100_000
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0  # live-server threads close their connections
    settings.TENANT_SPARE_SCHEMAS = 0  # no spare schemas but in tests/test_spares.py (they turn them on)
    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set(), keepdb=django_db_keepdb
        )
        for slug, name in TEST_TENANTS.items():
            create_tenant(slug=slug, name=name)
            add_user(slug=slug, email=f"admin@{slug}.test", password=PASSWORD, role="admin")
            add_user(slug=slug, email=f"member@{slug}.test", password=PASSWORD, role="member")
            with schema_context(slug):
                seed_contacts(slug)
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            with connections["default"].cursor() as cursor:  # stragglers from server threads
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            connections.close_all()
            teardown_databases(db_cfg, verbosity=0)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@dataclass
class LiveServer:
    url: str

    def tenant_url(self, slug: str, path: str = "") -> str:
        return f"{self.url}/t/{slug}/{path.lstrip('/')}"

    def tenant(self, slug: str) -> Tenant:
        """The tenant ``slug`` on this server, as the OAuth helpers (tests.oauth_flow) take it."""
        return Tenant(f"{self.url}/t/{slug}", slug)


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker) -> Iterator[LiveServer]:
    """A real HTTP server on loopback (Django's threaded WSGI server) over the test database."""
    from django.core.wsgi import get_wsgi_application

    django_db_blocker.unblock()
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        django_db_blocker.restore()


@pytest.fixture
def live(live_server_url: LiveServer) -> LiveServer:
    """Committed-database access for tests that talk to the live server; leaves no open transaction."""
    yield live_server_url
    connections.close_all()


@pytest.fixture
def tenant(live: LiveServer) -> Callable[[str], Tenant]:
    """``tenant("acme")``: a live tenant for the OAuth helpers (any slug, e.g. one a test created)."""
    return live.tenant


@pytest.fixture
def acme(live: LiveServer) -> Tenant:
    return live.tenant("acme")


@pytest.fixture
def globex(live: LiveServer) -> Tenant:
    return live.tenant("globex")


@dataclass
class DocumentServer:
    """JSON documents served over HTTP on loopback: ``documents[path] = body``; ``hits`` lists the
    paths asked for, in order; unknown paths get 404."""

    url: str
    documents: dict[str, bytes]
    hits: list[str]
    cache_control: str = ""

    def serve_discovery(self, **fields: object) -> None:
        """An OpenID discovery document of issuer ``url`` with these fields."""
        self.documents["/.well-known/openid-configuration"] = json.dumps({"issuer": self.url, **fields}).encode()


@pytest.fixture
def document_server() -> Iterator[DocumentServer]:
    import http.server

    served = DocumentServer("", {}, [])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.hits.append(self.path)
            body = served.documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            if served.cache_control:
                self.send_header("Cache-Control", served.cache_control)
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def refresh_grace_seconds(seconds: int) -> Iterator[None]:
    """DOT's refresh grace period set for the live server (its settings object, not Django's)."""
    from oauth2_provider.settings import oauth2_settings

    original = oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS
    oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS = seconds
    try:
        yield
    finally:
        oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS = original


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def page():
    """A light-theme Chromium page at a desktop size (the admin's browser tests; others define their own)."""
    from tests.chromium import chromium_context

    with chromium_context(color_scheme="light", viewport={"width": 1280, "height": 800}) as context:
        yield context.new_page()
