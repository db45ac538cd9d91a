"""A new tenant's schema, made inside the caller's transaction (``tenants.services.create_tenant``
calls it right after saving the tenant row, so the row and its schema commit together or not at all).

The schema is a copy of the migrated template: a spare copied ahead of time (``pgtenancy.spares``)
renamed, else a copy made now (``pgtenancy.provisioning``), and a refill of the spare pool is queued
for when the transaction commits. Without a usable template it is made by running every migration
(django-tenants' own way). Migrations the template lacks are then run for real, never faked."""

from __future__ import annotations

from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.postgresql_backend.base import _check_schema_name
from django_tenants.utils import quote_schema_name, schema_exists

from pgtenancy.provisioning import locked_template, missing_migrations
from pgtenancy.spares import claim_spare, pool_size
from pgtenancy.tasks import replenish_spares


def create_schema(schema: str, *, verbosity: int = 1) -> None:
    _check_schema_name(schema)
    if schema_exists(schema):  # left behind by an earlier tenant of that name: taken over, as django-tenants does
        return
    template = locked_template()
    if template is None:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_schema_name(schema)}")
        _migrate(schema, verbosity)
    else:
        if not claim_spare(template, schema):  # a spare copied ahead of time, else a copy now
            template.copy_into(schema)
        if pool_size():  # the pool may be short by one; a broker failure never fails the creation
            transaction.on_commit(replenish_spares.delay, robust=True)
        if missing_migrations(schema):
            _migrate(schema, verbosity)
    connection.set_schema_to_public()


def _migrate(schema: str, verbosity: int) -> None:
    call_command("migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=verbosity)
