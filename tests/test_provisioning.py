"""Tenants are copies of the migrated template schema (pgtenancy.provisioning): a copy holds exactly what a
migrated tenant holds, concurrent creations work, and a missing or lagging template still gives a
complete tenant (by running the migrations)."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django_tenants.utils import schema_context

from pgtenancy.provisioning import expected_migrations, missing_migrations
from tenants.models import Tenant
from tenants.services import create_tenant
from tests.support.schemas import TEMPLATE, assert_same_schema, drop, use_the_tenant


# Everything that makes two schemas the same for Django and PostgreSQL, with the schema's own name
# written as "S" (a foreign key to a public table stays "public."). Columns compare by position among
# the live columns: a migrated table keeps the slots of columns a migration dropped, a copy does not.
# the rows migrations and post_migrate receivers write into a tenant schema
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
