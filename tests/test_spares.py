"""Spare tenant schemas (pgtenancy.spares): a tenant gets a copy of the template made ahead of time only
while it matches the template as it is now; an empty pool, a stale spare or a rolled-back creation
fall back to the copy or leave the pool as it was; two creations never share a spare; the pool is
refilled after a creation commits and by migrate_schemas."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django_tenants.utils import schema_context, schema_exists

from config.celery import app
from pgtenancy.models import SpareSchema
from pgtenancy.provisioning import locked_template, missing_migrations
from pgtenancy.spares import SPARE_PREFIX, drop_spares, replenish
from tenants.models import Tenant
from tenants.services import create_tenant
from tests.support.schemas import TEMPLATE, assert_same_schema, drop, use_the_tenant


@pytest.fixture
def pool(settings) -> int:
    settings.TENANT_SPARE_SCHEMAS = 2
    return 2


@contextmanager
def tasks_run_inline() -> Iterator[None]:
    """The replenishment queued on commit runs in the committing thread (Celery's eager mode), so the
    test sees its effect and leaves no message in the broker."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = eager


def spares() -> list[str]:
    return sorted(SpareSchema.objects.values_list("name", flat=True))


def schema_oid(name: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s)::oid", [name])
        return cursor.fetchone()[0]


def sequence_position(schema: str) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f'"{schema}".django_content_type'])
        cursor.execute(f"SELECT last_value, is_called FROM {cursor.fetchone()[0]}")
        return cursor.fetchone()


def current_fingerprint() -> str:
    with transaction.atomic():
        return locked_template().fingerprint()


@pytest.mark.django_db
def test_a_tenant_gets_a_current_spare_and_the_pool_is_refilled_after_commit(
    pool: int, unique: str, django_capture_on_commit_callbacks
) -> None:
    assert replenish() == pool
    names = spares()
    assert len(names) == pool and all(name.startswith(SPARE_PREFIX) for name in names)
    assert set(SpareSchema.objects.values_list("fingerprint", flat=True)) == {current_fingerprint()}
    oids = {schema_oid(name) for name in names}
    assert_same_schema(names[0], TEMPLATE)

    slug = f"spare_{unique}"
    with django_capture_on_commit_callbacks() as callbacks:
        create_tenant(slug=slug, name="From a spare")
    assert schema_oid(slug) in oids  # renamed, not copied: the schema is the spare itself
    (claimed,) = set(names) - set(spares())
    assert len(spares()) == pool - 1 and not schema_exists(claimed)
    assert not missing_migrations(slug)
    assert_same_schema(slug, TEMPLATE)
    use_the_tenant(slug)

    assert len(callbacks) == 1  # the replenishment queued on commit
    with tasks_run_inline():
        callbacks[0]()
    assert len(spares()) == pool


@pytest.mark.django_db
def test_an_empty_pool_falls_back_to_the_copy(pool: int, unique: str) -> None:
    drop_spares()
    slug = f"spare_empty_{unique}"
    create_tenant(slug=slug, name="Copied")
    assert spares() == []
    assert_same_schema(slug, TEMPLATE)
    use_the_tenant(slug)


def _add_a_row() -> None:
    from mcp_tools.models import ToolPolicy

    with schema_context(TEMPLATE):
        ToolPolicy.objects.create(tool_name="spare_test_tool", scopes="crm.read")


def _move_a_sequence() -> None:
    with connection.cursor() as cursor:  # a row added and removed again: only the sequence moved
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('\"{TEMPLATE}\".django_content_type', 'id'), 5000)")


def _unapply_a_migration() -> None:
    call_command("migrate_schemas", "mcp_tools", "0001", schema_name=TEMPLATE, verbosity=0)


@pytest.mark.django_db
@pytest.mark.parametrize("change", [_add_a_row, _move_a_sequence, _unapply_a_migration])
def test_a_spare_that_lags_the_template_is_never_given_out(pool: int, unique: str, change: Callable[[], None]) -> None:
    """Changed after the spares were copied (undone with the test's transaction): a row, a sequence
    position, a migration. The new tenant is a copy of the template as it is now; replenishing drops
    the stale spares and copies new ones."""
    replenish()
    stale = spares()
    change()
    slug = f"spare_lag_{unique}"
    create_tenant(slug=slug, name="Not from a stale spare")
    assert spares() == stale and all(schema_oid(name) != schema_oid(slug) for name in stale)
    assert not missing_migrations(slug)  # the migration the template lacks was run on the tenant
    if change is not _unapply_a_migration:
        assert_same_schema(slug, TEMPLATE)
    with connection.cursor() as cursor:
        for table in ("mcp_tools_toolpolicy", "django_content_type"):
            cursor.execute(
                f'SELECT (SELECT array_agg(t ORDER BY t::text) FROM "{slug}".{table} t)::text'
                f' = (SELECT array_agg(t ORDER BY t::text) FROM "{TEMPLATE}".{table} t)::text'
            )
            assert cursor.fetchone()[0], table
    assert sequence_position(slug) == sequence_position(TEMPLATE)

    assert replenish() == pool
    fresh = spares()
    assert not set(fresh) & set(stale) and not any(schema_exists(name) for name in stale)
    assert set(SpareSchema.objects.values_list("fingerprint", flat=True)) == {current_fingerprint()}


@pytest.mark.django_db
def test_a_rolled_back_creation_leaves_its_spare_in_the_pool(pool: int, unique: str) -> None:
    replenish()
    before = {name: schema_oid(name) for name in spares()}
    slug = f"spare_rb_{unique}"
    with pytest.raises(RuntimeError), transaction.atomic():
        create_tenant(slug=slug, name="Rolled back")
        assert len(spares()) == pool - 1
        raise RuntimeError
    assert {name: schema_oid(name) for name in spares()} == before
    assert not Tenant.objects.filter(schema_name=slug).exists() and not schema_exists(slug)


def _create(job: int, slug: str, results: dict, barrier: threading.Barrier) -> None:
    try:
        barrier.wait(timeout=30)
        with tasks_run_inline():
            results[job] = create_tenant(slug=slug, name=slug)[1]
    except Exception as exc:
        results[job] = exc
    finally:
        connections.close_all()


def test_two_creations_at_once_never_get_the_same_spare(django_db_setup, django_db_blocker, settings, unique) -> None:
    """One spare, two tenants created at once (committed, in threads): one gets the spare, the other a
    copy; both complete; the replenishment each queues on commit refills the pool once."""
    settings.TENANT_SPARE_SCHEMAS = 1
    slugs = [f"spare_c1_{unique}", f"spare_c2_{unique}"]
    results: dict = {}
    barrier = threading.Barrier(len(slugs))
    try:
        with django_db_blocker.unblock():
            drop_spares()
            assert replenish() == 1
            spare_oid = schema_oid(spares()[0])
            threads = [threading.Thread(target=_create, args=(i, s, results, barrier)) for i, s in enumerate(slugs)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert len(results) == 2 and all(result.changed for result in results.values()), results
            assert sorted(schema_oid(slug) == spare_oid for slug in slugs) == [False, True]
            for slug in slugs:
                assert_same_schema(slug, TEMPLATE)
            assert len(spares()) == 1 and schema_oid(spares()[0]) not in {schema_oid(slug) for slug in slugs}
    finally:
        with django_db_blocker.unblock():
            drop(*slugs)
            drop_spares()


def test_migrate_schemas_keeps_current_spares_and_copies_stale_ones_again(
    django_db_setup, django_db_blocker, settings
) -> None:
    """Committed (``migrate_schemas`` takes the template's exclusive lock on a connection of its own,
    which would wait for a test transaction holding the shared one); the template row is removed and
    the spares dropped at the end."""
    from mcp_tools.models import ToolPolicy

    settings.TENANT_SPARE_SCHEMAS = 2
    with django_db_blocker.unblock():
        try:
            drop_spares()
            call_command("migrate_schemas", tenant=True, verbosity=0)  # fills the pool
            kept = spares()
            assert len(kept) == 2
            call_command("migrate_schemas", tenant=True, verbosity=0)  # nothing changed: the same spares
            assert spares() == kept
            _add_a_row()
            call_command("migrate_schemas", tenant=True, verbosity=0)
            fresh = spares()
            assert len(fresh) == 2 and not set(fresh) & set(kept) and not any(schema_exists(n) for n in kept)
            assert set(SpareSchema.objects.values_list("fingerprint", flat=True)) == {current_fingerprint()}
        finally:
            with schema_context(TEMPLATE):
                ToolPolicy.objects.filter(tool_name="spare_test_tool").delete()
            drop_spares()


@pytest.mark.django_db
def test_spares_are_not_tenants_and_no_url_reaches_them(pool: int, client) -> None:
    replenish()
    name = spares()[0]
    assert not Tenant.objects.filter(schema_name=name).exists()
    assert client.get(f"/t/{name}/mcp").status_code == 404
