"""``migrate_schemas`` over the tenant schemas (pgtenancy.schema_migrations): a shared-only migration is
recorded in every tenant schema without migrating any of them, a tenant migration is applied in every
schema (the template included), the post_migrate receivers run once per schema and only where
something changed, and a schema that fails is named while the others carry on.

The migrations are added for the test through ``MIGRATION_MODULES``: a package per app whose
``__path__`` holds the app's own migrations and the test's one."""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.models.signals import post_migrate
from django_tenants.signals import schema_pre_migration
from django_tenants.utils import get_public_schema_name, schema_context

from pgtenancy.provisioning import expected_migrations
from tenants.models import Tenant
from tenants.services import create_tenant

TEMPLATE = settings.TENANT_TEMPLATE_SCHEMA

ADD_FIELD = """
from django.db import migrations, models


def refuse_in_globex(apps, schema_editor):
    if {fail_in_globex} and schema_editor.connection.schema_name == "globex":
        raise RuntimeError("refused in globex")


class Migration(migrations.Migration):
    dependencies = [({app!r}, {parent!r})]
    operations = [
        migrations.AddField({model!r}, {field!r}, models.TextField(null=True)),
        migrations.RunPython(refuse_in_globex, migrations.RunPython.noop),
    ]
"""


def leaf(app_label: str) -> str:
    return MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes(app_label)[0][1]


@pytest.fixture
def add_migration(tmp_path: Path, settings, monkeypatch) -> Iterator[Callable[..., str]]:
    """``add_migration(app, model, field)``: a migration adding a nullable text column; returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    packages: list[str] = []

    def add(app_label: str, model: str, field: str, *, fail_in_globex: bool = False) -> str:
        package = tmp_path / f"extra_{app_label}_migrations"
        parent = leaf(app_label)
        if not package.exists():
            package.mkdir()
            own = Path(apps.get_app_config(app_label).path) / "migrations"
            (package / "__init__.py").write_text(f"__path__.append({str(own)!r})\n")
            settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, app_label: package.name}
            packages.append(package.name)
        name = f"9{len(list(package.glob('9*.py'))):03d}_test_{field}"
        (package / f"{name}.py").write_text(
            ADD_FIELD.format(app=app_label, parent=parent, model=model, field=field, fail_in_globex=fail_in_globex)
        )
        importlib.invalidate_caches()
        expected_migrations.cache_clear()
        return name

    yield add
    expected_migrations.cache_clear()
    for name in packages:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


@pytest.fixture
def observed() -> Iterator[dict[str, list[str]]]:
    """The schemas each migration run went through: ``migrated`` (django-tenants' per-schema signal,
    sent by a whole ``migrate`` of a schema) and ``receivers`` (one post_migrate emission: crm's)."""
    seen: dict[str, list[str]] = {"migrated": [], "receivers": []}

    def migrated(sender, schema_name: str, **kwargs) -> None:
        seen["migrated"].append(schema_name)

    def receivers(sender, **kwargs) -> None:
        seen["receivers"].append(connection.schema_name)

    schema_pre_migration.connect(migrated, weak=False, dispatch_uid="test.migrated")
    post_migrate.connect(receivers, sender=apps.get_app_config("crm"), weak=False, dispatch_uid="test.receivers")
    try:
        yield seen
    finally:
        schema_pre_migration.disconnect(dispatch_uid="test.migrated")
        post_migrate.disconnect(sender=apps.get_app_config("crm"), dispatch_uid="test.receivers")


def tenant_schemas() -> list[str]:
    return sorted(Tenant.objects.exclude(schema_name=get_public_schema_name()).values_list("schema_name", flat=True))


def recorded(schema: str, app: str, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s AND name = %s', [app, name])
        return cursor.fetchone()[0] == 1


def nullable_column(schema: str, table: str, column: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT is_nullable FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "AND column_name = %s",
            [schema, table, column],
        )
        row = cursor.fetchone()
    return row == ("YES",)


def unapplied(schema: str) -> list:
    """What ``showmigrations`` lists unticked in the schema (the plan to the leaves)."""
    with schema_context(schema):
        executor = MigrationExecutor(connection)
        return executor.migration_plan(executor.loader.graph.leaf_nodes())


# one migrate_schemas per test: it leaves the template share-locked until the test's transaction ends
@pytest.mark.django_db
def test_a_shared_only_migration_is_recorded_in_every_tenant_schema_without_migrating_them(
    add_migration, observed
) -> None:
    from mcp_tools.models import ToolPolicy

    tenants = tenant_schemas()
    assert {"acme", "globex"} <= set(tenants)
    with schema_context("acme"):  # the receivers have something to write in acme only
        ToolPolicy.objects.filter(tool_name="crm_get_contact").delete()

    # jobs is in SHARED_APPS only: one row in each tenant schema, no migrate
    shared = add_migration("jobs", "jobrun", "test_shared_note")
    call_command("migrate_schemas", verbosity=0)
    assert nullable_column("public", "jobs_jobrun", "test_shared_note")
    for schema in [*tenants, TEMPLATE]:
        assert recorded(schema, "jobs", shared), schema
        assert unapplied(schema) == [], schema
    assert not set(observed["migrated"]) & set(tenants)  # no tenant schema went through migrate
    tenant_receivers = [schema for schema in observed["receivers"] if schema in tenants]
    assert tenant_receivers == ["acme"]  # once, where a row was missing
    with schema_context("acme"):
        assert ToolPolicy.objects.filter(tool_name="crm_get_contact").exists()


@pytest.mark.django_db
def test_a_tenant_migration_is_applied_in_every_schema_and_in_later_tenants(add_migration, observed) -> None:
    tenants = tenant_schemas()
    tenant = add_migration("crm", "contact", "test_tenant_note")
    call_command("migrate_schemas", verbosity=0)
    for schema in [*tenants, TEMPLATE]:
        assert nullable_column(schema, "crm_contact", "test_tenant_note"), schema
        assert recorded(schema, "crm", tenant), schema
        assert unapplied(schema) == [], schema
    assert sorted(schema for schema in observed["migrated"] if schema in tenants) == tenants  # once each
    assert sorted(schema for schema in observed["receivers"] if schema in tenants) == tenants  # once each
    with schema_context("acme"):
        out = io.StringIO()
        call_command("showmigrations", "crm", stdout=out)
    assert f"[X] {tenant}" in out.getvalue()
    # a tenant created afterwards is complete
    create_tenant(slug="migrated_later", name="Migrated later")
    assert nullable_column("migrated_later", "crm_contact", "test_tenant_note")
    assert unapplied("migrated_later") == []


@pytest.mark.django_db
def test_a_schema_that_fails_is_named_and_the_others_are_migrated(add_migration) -> None:
    name = add_migration("crm", "contact", "test_refused", fail_in_globex=True)
    with pytest.raises(CommandError) as failure:
        call_command("migrate_schemas", tenant=True, verbosity=0)
    assert "globex" in str(failure.value) and "refused in globex" in str(failure.value)
    assert "acme" not in str(failure.value)
    assert not recorded("globex", "crm", name) and not nullable_column("globex", "crm_contact", "test_refused")
    for schema in [s for s in tenant_schemas() if s != "globex"] + [TEMPLATE]:
        assert recorded(schema, "crm", name), schema
        assert nullable_column(schema, "crm_contact", "test_refused"), schema


def test_the_receivers_that_write_in_tenant_schemas_are_the_ones_the_row_check_knows() -> None:
    """Where post_migrate runs in a tenant schema (``pgtenancy.schema_migrations``): wherever
    migrations were applied, and where ``RECEIVER_ROWS`` finds a row of the template missing. A new
    receiver has to fit one of the two: rows it writes go into ``RECEIVER_ROWS``; one that only acts
    after migrations (the foreign-key guard) needs nothing; receivers that only act in the public
    schema (the beat rows of ``*.schedules``) need nothing either."""
    names = set()
    for app_config in apps.get_app_configs():
        for receiver in post_migrate._live_receivers(app_config)[0]:
            names.add(f"{receiver.__module__}.{receiver.__qualname__}")
    tenant_side = {name for name in names if not name.endswith(".schedules.create_schedules")}
    assert tenant_side == {
        "django.contrib.contenttypes.management.create_contenttypes",
        "django.contrib.auth.management.create_permissions",
        "mcp_tools.receivers.ensure_policies_after_migrate",
        "tenants.user_references.keep_dropped",  # after a package's migration re-adds a foreign key
    }
