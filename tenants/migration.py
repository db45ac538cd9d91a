"""``migrate_schemas`` keeps the tenant template current (``TENANT_MIGRATION_EXECUTOR`` names this
module's ``get_executor`` through django-tenants' ``GET_EXECUTOR_FUNCTION`` setting).

A run over the tenant schemas (``migrate_schemas``, ``migrate_schemas --tenant``, plain ``migrate``)
first creates the template schema if it is missing and migrates it, post_migrate receivers included,
under the exclusive template lock, then migrates the tenants with the chosen executor (``standard``
or ``multiprocessing``, ``--executor``). A run for one schema (``--schema=<slug>``) or for the public
schema alone leaves the template alone."""

from __future__ import annotations

from django.db import connection
from django_tenants.migration_executors import get_executor as library_executor
from django_tenants.migration_executors.base import MigrationExecutor, run_migrations
from django_tenants.utils import schema_exists

from tenants.provisioning import template_lock, template_schema


def migrate_template(executor: MigrationExecutor) -> None:
    template = template_schema()
    if template is None:
        return
    with template_lock():
        if not schema_exists(template):
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "{template}"')
        run_migrations(executor.args, executor.options, executor.codename, template)


def get_executor(codename: str | None = None) -> type[MigrationExecutor]:
    base = library_executor(codename)

    class TemplateFirst(base):  # type: ignore[misc,valid-type]
        def run_migrations(self, tenants=None):
            names = list(tenants or [])
            if names != [self.PUBLIC_SCHEMA_NAME] and not self.options.get("schema_name"):
                migrate_template(self)
            return super().run_migrations(tenants=names)

    TemplateFirst.codename = base.codename
    return TemplateFirst
