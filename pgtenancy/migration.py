"""``migrate_schemas`` keeps the tenant template current (``TENANT_MIGRATION_EXECUTOR`` names this
module's ``get_executor`` through django-tenants' ``GET_EXECUTOR_FUNCTION`` setting).

A run over the tenant schemas (``migrate_schemas``, ``migrate_schemas --tenant``, plain ``migrate``)
first creates the template schema if it is missing and migrates it, post_migrate receivers included,
under the exclusive template lock, then migrates the tenants with the chosen executor (``standard``
or ``multiprocessing``, ``--executor``). A run for one schema (``--schema=<slug>``) or for the public
schema alone leaves the template alone.

The tenants do not go through Django's ``migrate`` one by one (about half a second of CPU each,
mostly rendering the migration state): ``pgtenancy.schema_migrations`` records the shared-only
migrations in one statement per schema, applies the tenant migrations with one rendered state per
group of schemas, and runs the post_migrate receivers only where they have something to write. The
template, runs with targets or ``--fake``/``--plan``/``--check``/``--prune``, and executors other than
``standard``/``multiprocessing`` go through ``migrate`` as before.

At the end of such a run the pool of spare schemas (``pgtenancy.spares``) is replenished: spares copied
from the template as it was before are dropped and copied again.
``TENANT_MIGRATE_SKIP_CURRENT = False`` turns the shortcut off (a whole ``migrate`` per tenant)."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django_tenants.migration_executors import get_executor as library_executor
from django_tenants.migration_executors.base import MigrationExecutor, run_migrations
from django_tenants.utils import schema_exists

from pgtenancy.provisioning import template_lock, template_schema
from pgtenancy.schema_migrations import migrate_tenant_schemas, raise_for_failures
from pgtenancy.spares import replenish

_FULL_RUN_OPTIONS = ("fake", "fake_initial", "plan", "check_unapplied", "prune", "run_syncdb")


def migrate_template(executor: MigrationExecutor) -> None:
    template = template_schema()
    if template is None:
        return
    with template_lock():
        if not schema_exists(template):
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "{template}"')
        run_migrations(executor.args, executor.options, executor.codename, template)


def fast_path(executor: MigrationExecutor) -> bool:
    """Whether the tenants go through ``pgtenancy.schema_migrations`` rather than a whole ``migrate`` each."""
    options = executor.options
    return (
        getattr(settings, "TENANT_MIGRATE_SKIP_CURRENT", True)
        and executor.codename in ("standard", "multiprocessing")
        and not options.get("app_label")
        and not any(options.get(flag) for flag in _FULL_RUN_OPTIONS)
    )


def get_executor(codename: str | None = None) -> type[MigrationExecutor]:
    base = library_executor(codename)

    class TemplateFirst(base):  # type: ignore[misc,valid-type]
        def run_migrations(self, tenants=None):
            names = list(tenants or [])
            whole_run = names != [self.PUBLIC_SCHEMA_NAME] and not self.options.get("schema_name")
            if whole_run:
                migrate_template(self)
            if whole_run and fast_path(self):
                if self.PUBLIC_SCHEMA_NAME in names:
                    names.remove(self.PUBLIC_SCHEMA_NAME)
                    super().run_migrations(tenants=[self.PUBLIC_SCHEMA_NAME])
                report = migrate_tenant_schemas(names, template_schema(), self.options, self.codename)
                replenish()  # spares copied from the template as it was are dropped and copied again
                raise_for_failures(report)
                return None
            result = super().run_migrations(tenants=names)
            if whole_run and not any(self.options.get(flag) for flag in ("plan", "check_unapplied")):
                replenish()
            return result

    TemplateFirst.codename = base.codename
    return TemplateFirst
