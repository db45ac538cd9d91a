"""The layout a distributed PostgreSQL (Citus schema-based sharding, docs/scaling.md) can take over:
no tenant table has a foreign key to a shared table other than the ones listed as reference tables
(``tenants.user_references.SHARED_TABLES_TENANTS_MAY_REFERENCE``, none today), and the hot-path
statements (an authorized ``tools/call``, a code exchange, a refresh) name only their own tenant's
schema and, among the public tables, only the reference tables (``REFERENCE_TABLES`` below); a login
writes none of them, only a local table of the coordinator (``LOGIN_WRITES_PUBLIC``)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from probe.mcp_wire import modern_message
from tenants.user_references import SHARED_TABLES_TENANTS_MAY_REFERENCE, drop_foreign_keys_to_shared_tables
from tests.test_token_statements import _code, _exchange, _refresh, in_process  # noqa: F401 (fixture)

# the public tables a tenant's hot-path statements read: Citus reference tables (docs/scaling.md)
REFERENCE_TABLES = {"accounts_user", "tenants_membership", "tenants_tenant"}
# the public tables a login writes: local tables of the coordinator, never reference tables (a write to
# one is a copy on every node); the last-login time is kept out of accounts_user for this
LOGIN_WRITES_PUBLIC = {"accounts_userlogin"}

_FOREIGN_KEYS_TO_PUBLIC = """
    SELECT n.nspname, r.relname, c.conname, f.relname
      FROM pg_constraint c
      JOIN pg_class r ON r.oid = c.conrelid
      JOIN pg_namespace n ON n.oid = r.relnamespace
      JOIN pg_class f ON f.oid = c.confrelid
     WHERE c.contype = 'f' AND f.relnamespace = 'public'::regnamespace AND n.nspname = ANY(%s)
     ORDER BY 1, 2, 3
"""


def tenant_schemas() -> list[str]:
    from tenants.models import Tenant

    with schema_context("public"):
        names = list(Tenant.objects.exclude(schema_name="public").values_list("schema_name", flat=True))
    return [*names, settings.TENANT_TEMPLATE_SCHEMA]


def foreign_keys_to_shared_tables() -> list[tuple[str, str, str, str]]:
    """Every foreign key from a table of a tenant schema (or the template) to a public table not
    listed as a reference table: the whole catalog, not only the tables Django knows."""
    with connection.cursor() as cursor:
        cursor.execute(_FOREIGN_KEYS_TO_PUBLIC, [tenant_schemas()])
        return [row for row in cursor.fetchall() if row[3] not in SHARED_TABLES_TENANTS_MAY_REFERENCE]


@pytest.mark.django_db
def test_no_tenant_table_has_a_foreign_key_to_a_shared_table():
    assert {"acme", "globex", settings.TENANT_TEMPLATE_SCHEMA} <= set(tenant_schemas())
    assert foreign_keys_to_shared_tables() == []


def readd_user_foreign_key(cursor, table: str) -> None:
    cursor.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT readded_user_fk "
        "FOREIGN KEY (user_id) REFERENCES public.accounts_user (id) DEFERRABLE INITIALLY DEFERRED"
    )


@pytest.mark.django_db
def test_a_re_added_foreign_key_is_caught_and_dropped_again_after_migrate():
    from django.core.management.sql import emit_post_migrate_signal

    with schema_context("acme"), connection.cursor() as cursor:
        # what a later django-oauth-toolkit migration altering AccessToken.user would leave behind
        readd_user_foreign_key(cursor, "oauth2_provider_accesstoken")
        assert foreign_keys_to_shared_tables() == [
            ("acme", "oauth2_provider_accesstoken", "readded_user_fk", "accounts_user")
        ]
        emit_post_migrate_signal(0, False, connection.alias, plan=[])  # what migrate(_schemas) ends with
        assert foreign_keys_to_shared_tables() == []


@pytest.mark.django_db
def test_the_guard_leaves_a_schema_alone_where_the_dropping_migration_is_unapplied():
    """Unapplying the migration re-adds the constraints for good: the guard does not fight it."""
    with schema_context("acme"), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'platform_oauth' "
            "AND name = '0008_drop_third_party_user_foreign_keys'"
        )
        readd_user_foreign_key(cursor, "oauth2_provider_grant")
        from django.apps import apps

        from tenants.user_references import keep_dropped

        keep_dropped(sender=apps.get_app_config("tenants"), using=connection.alias)
        assert [row[2] for row in foreign_keys_to_shared_tables()] == ["readded_user_fk"]
        assert drop_foreign_keys_to_shared_tables("acme") == ["readded_user_fk"]


_WRITTEN = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+((?:"?\w+"?\.)?"?\w+"?)', re.IGNORECASE)


@pytest.mark.django_db
def test_a_login_writes_no_reference_table(client):
    from tests.conftest import PASSWORD

    public_tables, tenant_tables = _tables_of("public"), _tables_of("acme")
    client.get("/t/acme/login/")  # the session and CSRF cookies, as a browser has them
    with CaptureQueriesContext(connection) as login:
        response = client.post("/t/acme/login/", {"username": "member@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    written: set[str] = set()
    for query in login.captured_queries:
        for reference in _WRITTEN.findall(query["sql"]):
            written |= tables_by_schema(f"INTO {reference}", tenant_tables, public_tables).get("public", set())
    assert written == LOGIN_WRITES_PUBLIC


# --- hot-path statements ------------------------------------------------------------------------------
_TABLE = re.compile(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+((?:"?\w+"?\.)?"?\w+"?)', re.IGNORECASE)
_QUALIFIER = re.compile(r'"?(\w+)"?\s*\.\s*"?\w+"?')


def tables_by_schema(sql: str, tenant_tables: set[str], public_tables: set[str]) -> dict[str, set[str]]:
    """Schema -> tables a statement names after FROM/JOIN/UPDATE/INTO; an unqualified name goes to the
    schema the search path (tenant, then public) resolves it in."""
    found: dict[str, set[str]] = {}
    for reference in _TABLE.findall(sql):
        parts = [part.strip('"') for part in reference.split(".")]
        if len(parts) == 2:
            schema, table = parts
        elif parts[0] in tenant_tables:
            schema, table = "<tenant>", parts[0]
        elif parts[0] in public_tables:
            schema, table = "public", parts[0]
        else:
            continue  # a subquery alias or a function
        found.setdefault(schema, set()).add(table)
    return found


def _tables_of(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_hot_path_statements_name_one_tenant_schema_and_only_reference_tables(in_process):  # noqa: F811
    from crm.models import Contact

    http, browser, client = in_process
    assert _exchange(http, client, *_code(browser, client)).status_code == 200  # warm-up: consent, caches
    code, verifier = _code(browser, client)
    connection.queries_log.clear()  # a full log (9,000 entries) would capture nothing
    with CaptureQueriesContext(connection) as exchanged:
        issued = _exchange(http, client, code, verifier)
    assert issued.status_code == 200, issued.text
    exchanged = list(exchanged.captured_queries)  # read now: the log is cleared before the next one
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as refreshed:
        rotated = _refresh(http, client, issued.json()["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    refreshed = list(refreshed.captured_queries)
    with schema_context("acme"):
        contact_id = Contact.objects.values_list("pk", flat=True).first()
    params = {"name": "crm_get_contact", "arguments": {"contact_id": contact_id}}
    body, headers = modern_message("tools/call", params, client_name="distribution-test")
    headers["Authorization"] = f"Bearer {rotated.json()['access_token']}"
    called = http.post(client.tenant.url("mcp"), json=body, headers=headers)  # warm-up (prepares)
    assert called.status_code == 200, called.text
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as tool_call:
        called = http.post(client.tenant.url("mcp"), json=body, headers=headers)
    assert called.status_code == 200 and called.json()["result"]["isError"] is False, called.text
    tool_call = list(tool_call.captured_queries)

    schemas = set(tenant_schemas())
    tenant_tables, public_tables = _tables_of("acme"), _tables_of("public")
    public_read: set[str] = set()
    for name, captured in (("exchange", exchanged), ("refresh", refreshed), ("tools/call", tool_call)):
        statements = [q["sql"] for q in captured if not q["sql"].startswith("SET search_path")]
        assert statements, name
        for sql in statements:
            qualifiers = {match for match in _QUALIFIER.findall(sql) if match in schemas}
            assert qualifiers <= {"acme"}, (name, sql)  # never another tenant's schema
            found = tables_by_schema(sql, tenant_tables, public_tables)
            assert set(found) <= {"acme", "<tenant>", "public"}, (name, sql)
            public_read |= found.get("public", set())
    # the public tables these statements read: the reference tables, no other
    assert public_read == REFERENCE_TABLES
