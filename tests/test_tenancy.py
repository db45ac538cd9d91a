"""Foundation: schema isolation, routing, deactivation, the tenant admin gate, provisioning CLI."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from crm.models import Contact
from tenants.models import Membership, Tenant
from tenants.routing import split_tenant_path
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_row_written_in_acme_is_invisible_from_globex():
    with schema_context("acme"):
        Contact.objects.create(name="Only In Acme", email="only@acme.test")
        assert Contact.objects.filter(email="only@acme.test").count() == 1
    with schema_context("globex"):
        assert not Contact.objects.filter(email="only@acme.test").exists()
        assert not Contact.objects.filter(name="Only In Acme").exists()
    # the table itself is schema-qualified: the acme row is not in globex's table
    with connection.cursor() as cursor:
        cursor.execute('SELECT count(*) FROM "globex"."crm_contact" WHERE email = %s', ["only@acme.test"])
        assert cursor.fetchone()[0] == 0
        cursor.execute('SELECT count(*) FROM "acme"."crm_contact" WHERE email = %s', ["only@acme.test"])
        assert cursor.fetchone()[0] == 1


@pytest.mark.django_db
def test_tenant_tables_do_not_exist_in_public_schema():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema='public' AND table_name='crm_contact'"
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/t/acme/mcp", ("acme", "/mcp")),
        ("/t/acme/", ("acme", "/")),
        ("/t/acme", ("acme", "")),
        ("/t/", ("", "")),
        ("/admin/", None),
        ("/tx/acme/", None),
    ],
)
def test_split_tenant_path(path, expected):
    assert split_tenant_path(path) == expected


@pytest.mark.django_db
def test_tenant_health_routes_into_the_tenant_schema(client):
    response = client.get("/t/acme/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == "acme" and body["schema"] == "acme"
    assert body["checks"]["database"] == "ok"
    assert client.get("/t/globex/healthz").json()["schema"] == "globex"
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_unknown_tenant_is_404_and_bare_prefix_redirects(client):
    assert client.get("/t/nosuchtenant/healthz").status_code == 404
    assert client.get("/t/nosuchtenant/").status_code == 404
    response = client.get("/t/acme")
    assert response.status_code == 301 and response["Location"] == "/t/acme/"


@pytest.mark.django_db
def test_tenant_reachable_on_its_own_domain(client):
    from tenants.models import Domain

    Domain.objects.create(domain="acme.example.test", tenant=Tenant.objects.get(schema_name="acme"))
    response = client.get("/healthz", HTTP_HOST="acme.example.test")
    assert response.json()["tenant"] == "acme"
    # the login page's links are at the domain root, not under /t/acme/
    page = client.get("/login/", HTTP_HOST="acme.example.test")
    assert page.status_code == 200 and b'action="/login/"' in page.content


@pytest.mark.django_db
def test_reverse_inside_a_tenant_keeps_the_prefix(client):
    page = client.get("/t/acme/login/")
    assert page.status_code == 200
    assert b'action="/t/acme/login/"' in page.content
    assert b"Acme Corp" in page.content


@pytest.mark.django_db
def test_deactivated_tenant_is_refused(client):
    call_command("tenant_deactivate", "globex", stdout=io.StringIO())
    for path in ("/t/globex/healthz", "/t/globex/login/", "/t/globex/admin/"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert response.json()["error"] == "tenant_inactive"


@pytest.mark.django_db
def test_tenant_admin_open_to_tenant_admins_only(client):
    # a member of acme (not admin) is refused at the login form
    response = client.post(
        "/t/acme/admin/login/?next=/t/acme/admin/", {"username": "member@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert b"Please enter a correct email and password" in response.content
    assert client.get("/t/acme/admin/").status_code == 302

    # an acme admin gets in at acme ...
    client.post("/t/acme/admin/login/", {"username": "admin@acme.test", "password": PASSWORD})
    index = client.get("/t/acme/admin/")
    assert index.status_code == 200
    assert b"Contacts" in index.content
    # ... but the acme session does not exist in globex's schema, and the acme admin is no globex admin
    assert client.get("/t/globex/admin/").status_code == 302
    refused = client.post("/t/globex/admin/login/", {"username": "admin@acme.test", "password": PASSWORD})
    assert b"Please enter a correct email and password" in refused.content


@pytest.mark.django_db
def test_member_whose_membership_ended_loses_tenant_admin(client):
    call_command(
        "tenant_add_user",
        "acme",
        "temp-admin@acme.test",
        "--password",
        PASSWORD,
        "--role",
        "admin",
        stdout=io.StringIO(),
    )
    client.post("/t/acme/admin/login/", {"username": "temp-admin@acme.test", "password": PASSWORD})
    assert client.get("/t/acme/admin/").status_code == 200
    call_command("tenant_remove_user", "acme", "temp-admin@acme.test", stdout=io.StringIO())
    assert client.get("/t/acme/admin/").status_code == 302


@pytest.mark.django_db
def test_platform_admin_is_for_superusers_only(client, django_user_model):
    django_user_model.objects.create_user("staff-not-super@x.test", PASSWORD, is_staff=True)
    client.post("/admin/login/", {"username": "staff-not-super@x.test", "password": PASSWORD})
    assert client.get("/admin/").status_code == 302
    django_user_model.objects.create_superuser("root@x.test", PASSWORD)
    client.post("/admin/login/", {"username": "root@x.test", "password": PASSWORD})
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/tenants/tenant/").status_code == 200


# --- provisioning CLI -----------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("slug", ["Acme", "1acme", "pg_catalog", "public", "has-dash", "a" * 64, "", "ac me"])
@pytest.mark.django_db
def test_tenant_create_rejects_invalid_slugs(slug):
    with pytest.raises(CommandError, match=r"invalid_slug"):
        run("tenant_create", slug, "--name", "X")
    assert not Tenant.objects.filter(schema_name=slug).exists()


@pytest.mark.django_db
def test_tenant_create_is_idempotent_and_refuses_conflicts():
    assert "already exists" in run("tenant_create", "acme", "--name", "Acme Corp")
    with pytest.raises(CommandError, match=r"duplicate\]"):
        run("tenant_create", "acme", "--name", "Another Name")


@pytest.mark.django_db
def test_cli_errors_for_unknown_tenant_and_user():
    with pytest.raises(CommandError, match=r"unknown_tenant"):
        run("tenant_add_user", "nosuch", "x@y.test", "--password", PASSWORD)
    with pytest.raises(CommandError, match=r"unknown_tenant"):
        run("tenant_deactivate", "nosuch")
    with pytest.raises(CommandError, match=r"unknown_user"):
        run("tenant_remove_user", "acme", "nobody@nowhere.test")
    with pytest.raises(CommandError, match=r"not_a_member"):
        run("tenant_remove_user", "globex", "member@acme.test")
    with pytest.raises(CommandError, match=r"password_required"):
        run("tenant_add_user", "acme", "new-no-password@acme.test")
    with pytest.raises(CommandError, match=r"invalid_email"):
        run("tenant_add_user", "acme", "not-an-email", "--password", PASSWORD)
    with pytest.raises(CommandError):
        run("tenant_add_user", "acme", "x@y.test", "--password", PASSWORD, "--role", "owner")


@pytest.mark.django_db
def test_add_remove_readd_user_and_membership_ended_signal(django_capture_on_commit_callbacks):
    from tenants.signals import membership_ended

    seen = []

    def receiver(sender, tenant, user, membership, **kwargs):
        seen.append((tenant.slug, user.email, membership.is_active))

    membership_ended.connect(receiver)
    try:
        assert "added to acme as member" in run("tenant_add_user", "acme", "cycle@acme.test", "--password", PASSWORD)
        assert "already a member" in run("tenant_add_user", "acme", "cycle@acme.test")
        # the signal is sent on commit (receivers see committed state): once, for the first removal only
        with django_capture_on_commit_callbacks(execute=True) as removed:
            assert "ended" in run("tenant_remove_user", "acme", "cycle@acme.test")
        assert len(removed) == 1 and seen == [("acme", "cycle@acme.test", False)]
        with django_capture_on_commit_callbacks(execute=True) as again:
            assert "had already ended" in run("tenant_remove_user", "acme", "cycle@acme.test")
        assert again == [] and len(seen) == 1
        membership = Membership.objects.get(user__email="cycle@acme.test", tenant__schema_name="acme")
        assert not membership.is_active and membership.ended_at is not None
        assert "again a admin" in run("tenant_add_user", "acme", "cycle@acme.test", "--role", "admin")
        membership.refresh_from_db()
        assert membership.is_active and membership.role == "admin" and membership.ended_at is None
    finally:
        membership_ended.disconnect(receiver)


def test_nothing_imports_a_package_called_platform():
    """The project package is ``config``; ``platform`` must stay Python's standard-library module."""
    import importlib.util
    import sysconfig

    assert not (ROOT / "platform").exists() and not (ROOT / "platform.py").exists()
    spec = importlib.util.find_spec("platform")
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).parent == Path(sysconfig.get_paths()["stdlib"])
    shadowing = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("platform*")
        if ".venv" not in p.parts and p.stem == "platform" and p.suffix in {"", ".py"}
    ]
    assert shadowing == []
    # uuid imports platform; run from the project root (first on sys.path) as manage.py is
    imported = subprocess.run(
        [sys.executable, "-c", "import uuid, platform; print(platform.__file__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(imported).parent == Path(sysconfig.get_paths()["stdlib"])


@pytest.mark.django_db
def test_one_browser_can_be_signed_in_to_two_tenants(client):
    client.post("/t/acme/admin/login/", {"username": "admin@acme.test", "password": PASSWORD})
    client.post("/t/globex/admin/login/", {"username": "admin@globex.test", "password": PASSWORD})
    assert {"sessionid_acme", "sessionid_globex"} <= set(client.cookies)
    assert "sessionid" not in client.cookies
    assert client.get("/t/acme/admin/").status_code == 200
    assert client.get("/t/globex/admin/").status_code == 200
    # a tenant's cookie presented under another tenant's name is just an unknown session there
    client.cookies["sessionid_globex"] = client.cookies["sessionid_acme"].value
    assert client.get("/t/globex/admin/").status_code == 302


@pytest.mark.django_db
def test_auth_sql_mirrors_membership_active(unique):
    """The bearer check's SQL (``mcp_tools.statements.active_role_sql``) and ``Membership.objects.active()``
    agree on every kind of (non-)member: active, ended, inactive user, deactivated tenant, stranger."""
    from accounts.models import User
    from mcp_tools.statements import active_role_sql
    from tenants.services import add_user

    emails = {kind: f"{kind}-{unique}@mirror.test" for kind in ("active", "ended", "inactive", "stranger")}
    for kind, email in emails.items():
        if kind != "stranger":
            add_user(slug="acme", email=email, password=PASSWORD, role="admin")
            add_user(slug="globex", email=email, password=PASSWORD, role="member")
    User.objects.create_user(email=emails["stranger"], password=PASSWORD)
    Membership.objects.filter(user__email=emails["ended"], tenant__schema_name="acme").update(is_active=False)
    User.objects.filter(email=emails["inactive"]).update(is_active=False)
    Tenant.objects.filter(schema_name="globex").update(is_active=False)
    users = dict(User.objects.filter(email__in=emails.values()).values_list("email", "pk"))

    users_table, tenants_table = User._meta.db_table, Tenant._meta.db_table
    by_parameter = f"SELECT x.id, {active_role_sql('x.id')} FROM public.{users_table} x WHERE x.id = ANY(%s)"
    # the form the bearer statement uses: the tenant row it reads already, by its alias
    by_alias = (
        f"SELECT x.id, {active_role_sql('x.id', tenant='tn')} FROM public.{users_table} x"
        f" JOIN public.{tenants_table} tn ON tn.id = %s WHERE x.id = ANY(%s)"
    )
    seen = {}
    for tenant in Tenant.objects.filter(schema_name__in=("acme", "globex")):
        in_python = dict(Membership.objects.active().filter(tenant=tenant).values_list("user_id", "role"))
        for sql in (by_parameter, by_alias):
            with connection.cursor() as cursor:
                cursor.execute(sql, [tenant.pk, list(users.values())])
                in_sql = dict(cursor.fetchall())
            for email, pk in users.items():
                assert in_sql[pk] == in_python.get(pk), (tenant.slug, email, sql)
                seen[(tenant.slug, email.split("-")[0])] = in_sql[pk]
    assert seen == {
        ("acme", "active"): "admin",
        ("acme", "ended"): None,
        ("acme", "inactive"): None,
        ("acme", "stranger"): None,
        ("globex", "active"): None,  # the tenant is deactivated
        ("globex", "ended"): None,
        ("globex", "inactive"): None,
        ("globex", "stranger"): None,
    }
