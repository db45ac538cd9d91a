"""Tenants are copies of the migrated template schema (tenants.provisioning): a copy holds exactly what a
migrated tenant holds, concurrent creations work, and a missing or lagging template still gives a
complete tenant (by running the migrations)."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from django_tenants.utils import schema_context

from tenants.models import Tenant
from tenants.provisioning import expected_migrations, missing_migrations
from tenants.services import create_tenant

TEMPLATE = settings.TENANT_TEMPLATE_SCHEMA

# Everything that makes two schemas the same for Django and PostgreSQL, with the schema's own name
# written as "S" (a foreign key to a public table stays "public."). Columns compare by position among
# the live columns: a migrated table keeps the slots of columns a migration dropped, a copy does not.
SIGNATURE = {
    "columns": """
        SELECT c.relname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               replace(coalesce(pg_get_expr(d.adbin, d.adrelid), ''), %(s)s || '.', 'S.'), a.attidentity,
               a.attgenerated, a.attcollation
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = %(s)s::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped""",
    # triggers that exist, not relhastriggers ("has or once had"): a migrated table whose only foreign
    # key a later migration dropped keeps relhastriggers until a VACUUM, a copy never had it
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.relhasindex, c.relchecks,
               EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid)
        FROM pg_class c WHERE c.relnamespace = %(s)s::regnamespace AND c.relkind <> 't'""",
    "indexes": """
        SELECT c.relname, replace(pg_get_indexdef(i.indexrelid), ' ' || %(s)s || '.', ' S.'), i.indisunique,
               i.indisprimary, i.indisvalid
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = %(s)s::regnamespace""",
    "constraints": """
        SELECT t.relname, k.conname, k.contype, replace(pg_get_constraintdef(k.oid), ' ' || %(s)s || '.', ' S.'),
               k.convalidated, k.condeferrable,
               k.condeferred, coalesce(ft.relnamespace = k.connamespace, true)
        FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid LEFT JOIN pg_class ft ON ft.oid = k.confrelid
        WHERE k.connamespace = %(s)s::regnamespace""",
    "sequences": """
        SELECT s.sequencename, s.data_type::text, s.start_value, s.min_value, s.max_value, s.increment_by,
               s.cycle, s.cache_size, t.relname, a.attname, d.deptype
        FROM pg_sequences s
        JOIN pg_class sc ON sc.relname = s.sequencename AND sc.relnamespace = %(s)s::regnamespace
        JOIN pg_depend d
          ON d.objid = sc.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.schemaname = %(s)s""",
}
# the rows migrations and post_migrate receivers write into a tenant schema
ROWS = {
    "migrations": "SELECT app, name FROM {s}.django_migrations",
    "content types": "SELECT app_label, model FROM {s}.django_content_type",
    "permissions": """SELECT ct.app_label, ct.model, p.codename, p.name FROM {s}.auth_permission p
                      JOIN {s}.django_content_type ct ON ct.id = p.content_type_id""",
    "scope matrix defaults": "SELECT tool_name, enabled, scopes, noauth FROM {s}.mcp_tools_toolpolicy",
}


def signature(schema: str) -> dict[str, list[tuple]]:
    found = {}
    with connection.cursor() as cursor:
        for name, sql in SIGNATURE.items():
            cursor.execute(sql, {"s": schema})
            found[name] = sorted(cursor.fetchall(), key=repr)
        for name, sql in ROWS.items():
            cursor.execute(sql.format(s=f'"{schema}"'))
            found[name] = sorted(cursor.fetchall(), key=repr)
    return found


def assert_same_schema(left: str, right: str) -> None:
    a, b = signature(left), signature(right)
    for part in a:
        assert a[part], f"{part} of {left} is empty: the signature query is wrong"
        assert a[part] == b[part], f"{part} differ between {left} and {right}"


def use_the_tenant(slug: str) -> None:
    """Inserts into tables whose identity sequences were copied (rows already there) and into empty
    ones, and the CRM service the tools call."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from crm.models import Contact, Note
    from mcp_tools.models import ToolPolicy

    with schema_context(slug):
        ct = ContentType.objects.create(app_label="provisioning_test", model="thing")
        Permission.objects.create(content_type=ct, codename="poke_thing", name="Can poke")
        ToolPolicy.objects.create(tool_name="provisioning_test_tool", scopes="crm.read")
        contact = Contact.objects.create(name="Ada", email="ada@example.test", company="X")
        Note.objects.create(contact=contact, body="first", author_user_id=1)
        assert Contact.objects.count() == 1


def drop(*slugs: str) -> None:
    for slug in slugs:
        tenant = Tenant.objects.filter(schema_name=slug).first()
        if tenant is not None:
            tenant.delete(force_drop=True)


@pytest.mark.django_db
def test_a_copied_tenant_is_the_same_as_a_migrated_one(unique: str) -> None:
    """The copy against a tenant made by running every migration (the fallback when the template is
    missing, exercised here by hiding the template inside this test's transaction)."""
    copied, migrated = f"prov_copy_{unique}", f"prov_mig_{unique}"
    create_tenant(slug=copied, name="Copied")
    assert not missing_migrations(copied)
    with connection.cursor() as cursor:  # no template: the fallback runs the migrations
        cursor.execute(f'ALTER SCHEMA "{TEMPLATE}" RENAME TO "{TEMPLATE}_hidden"')
    create_tenant(slug=migrated, name="Migrated")
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER SCHEMA "{TEMPLATE}_hidden" RENAME TO "{TEMPLATE}"')
        # a copy keeps the template's django_migrations rows, timestamps included; a migration does not
        cursor.execute(
            f'SELECT count(*) FROM "{migrated}".django_migrations m JOIN "{TEMPLATE}".django_migrations t '
            "USING (app, name) WHERE m.applied = t.applied"
        )
        assert cursor.fetchone()[0] == 0
    assert {("crm", "0001_initial"), ("mcp_tools", "0002_idempotency_record")} <= expected_migrations()
    assert_same_schema(copied, migrated)
    assert_same_schema(copied, TEMPLATE)
    use_the_tenant(copied)
    use_the_tenant(migrated)


@pytest.mark.django_db
def test_the_suites_tenants_are_copies_of_the_template() -> None:
    """acme and globex (tests/conftest.py, created through tenants.services.create_tenant) carry the
    template's own django_migrations rows: every other test exercises copied tenants."""
    for slug in ("acme", "globex"):
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT count(*) FROM "{slug}".django_migrations m JOIN "{TEMPLATE}".django_migrations t '
                "USING (id, app, name, applied)"
            )
            copied_rows = cursor.fetchone()[0]
        assert copied_rows == len(expected_migrations())


@pytest.mark.django_db
def test_a_template_that_lags_the_code_gets_the_missing_migrations_run(unique: str) -> None:
    """A copy never fakes a migration: one the template has not applied is applied to the new tenant."""
    slug = f"prov_lag_{unique}"
    # undone when the test's transaction is rolled back
    call_command("migrate_schemas", "mcp_tools", "0001", schema_name=TEMPLATE, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"{TEMPLATE}.mcp_tools_idempotencyrecord"])
        assert cursor.fetchone()[0] is None
    create_tenant(slug=slug, name="Lagging")
    assert not missing_migrations(slug)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"{slug}.mcp_tools_idempotencyrecord"])
        assert cursor.fetchone()[0] is not None


def _create_in_thread(job: int, slug: str, results: dict, barrier: threading.Barrier) -> None:
    try:
        barrier.wait(timeout=30)
        results[job] = create_tenant(slug=slug, name=slug.upper())[1]
    except Exception as exc:
        results[job] = exc
    finally:
        connections.close_all()


def test_tenants_created_at_the_same_time(django_db_setup, django_db_blocker, unique: str) -> None:
    """Two different tenants at once both get complete schemas; two callers racing on one slug get one
    tenant, and the loser an "already exists" answer, not an error. Committed (threads), so no
    ``django_db`` transaction: the tenants are dropped at the end."""
    one, two = f"prov_c1_{unique}", f"prov_c2_{unique}"
    same = f"prov_same_{unique}"
    results: dict = {}
    jobs = [one, two, same, same]
    barrier = threading.Barrier(len(jobs))
    threads = [threading.Thread(target=_create_in_thread, args=(i, s, results, barrier)) for i, s in enumerate(jobs)]
    try:
        with django_db_blocker.unblock():
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        assert len(results) == len(jobs) and not [r for r in results.values() if isinstance(r, Exception)], results
        assert results[0].changed and results[1].changed
        assert sorted([results[2].changed, results[3].changed]) == [False, True], results
        with django_db_blocker.unblock():
            assert Tenant.objects.filter(schema_name=same).count() == 1
            for slug in (one, two, same):
                assert_same_schema(slug, TEMPLATE)
            use_the_tenant(one)
    finally:
        with django_db_blocker.unblock():
            drop(one, two, same)


@pytest.mark.django_db
def test_migrate_schemas_recreates_the_template_and_runs_the_receivers_of_current_tenants() -> None:
    """``migrate_schemas`` makes a missing template again (migrated, receivers included), and a tenant
    that is already current still gets its post_migrate receivers (here: a scope-matrix row restored)."""
    from mcp_tools.models import ToolPolicy

    with schema_context("acme"):
        ToolPolicy.objects.filter(tool_name="crm_get_contact").delete()
    with connection.cursor() as cursor:  # undone when the test's transaction is rolled back
        cursor.execute(f'DROP SCHEMA "{TEMPLATE}" CASCADE')
    call_command("migrate_schemas", tenant=True, verbosity=0)
    assert not missing_migrations(TEMPLATE)
    assert_same_schema(TEMPLATE, "globex")
    with schema_context("acme"):
        assert ToolPolicy.objects.filter(tool_name="crm_get_contact").exists()
