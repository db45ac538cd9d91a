"""``migrate_schemas`` keeps the tenant template current (``TENANT_MIGRATION_EXECUTOR`` names this
module's ``get_executor`` through django-tenants' ``GET_EXECUTOR_FUNCTION`` setting).

A run over the tenant schemas (``migrate_schemas``, ``migrate_schemas --tenant``, plain ``migrate``)
first creates the template schema if it is missing and migrates it, post_migrate receivers included,
under the exclusive template lock, then migrates the tenants with the chosen executor (``standard``
or ``multiprocessing``, ``--executor``). A run for one schema (``--schema=<slug>``) or for the public
schema alone leaves the template alone.

Tenants whose ``django_migrations`` already lists every migration on disk are not put through
Django's ``migrate`` (about half a second of CPU each, mostly rendering the migration state, for
nothing to apply): they only get the post_migrate receivers (content types, permissions, the scope
matrix's new tools), which is what such a ``migrate`` would have done. The others, the template, and
runs with targets or ``--fake``/``--plan``/``--check``/``--prune`` go through ``migrate`` as before.

At the end of such a run the pool of spare schemas (``pgtenancy.spares``) is replenished: spares copied
from the template as it was before are dropped and copied again.
``TENANT_MIGRATE_SKIP_CURRENT = False`` turns the shortcut off."""

from __future__ import annotations

from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django_tenants.migration_executors import get_executor as library_executor
from django_tenants.migration_executors.base import MigrationExecutor, run_migrations
from django_tenants.utils import schema_exists

from pgtenancy.provisioning import missing_migrations, template_lock, template_schema
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


def receivers_only_when_current(executor: MigrationExecutor, names: list[str]) -> list[str]:
    """The schemas that need ``migrate``; the current ones get the post_migrate receivers here."""
    options = executor.options
    if (
        not getattr(settings, "TENANT_MIGRATE_SKIP_CURRENT", True)
        or options.get("app_label")
        or any(options.get(flag) for flag in _FULL_RUN_OPTIONS)
    ):
        return names
    behind = []
    for schema in names:
        if schema == executor.PUBLIC_SCHEMA_NAME or missing_migrations(schema):
            behind.append(schema)
            continue
        connection.set_schema(schema)
        emit_post_migrate_signal(0, False, connection.alias, plan=[])
    connection.set_schema_to_public()
    verbosity = int(options.get("verbosity", 1))
    if verbosity >= 1 and len(behind) < len(names):
        print(f"{len(names) - len(behind)} tenant schemas already current: post_migrate receivers only")
    return behind


def get_executor(codename: str | None = None) -> type[MigrationExecutor]:
    base = library_executor(codename)

    class TemplateFirst(base):  # type: ignore[misc,valid-type]
        def run_migrations(self, tenants=None):
            names = list(tenants or [])
            whole_run = names != [self.PUBLIC_SCHEMA_NAME] and not self.options.get("schema_name")
            if whole_run:
                migrate_template(self)
                names = receivers_only_when_current(self, names)
            result = super().run_migrations(tenants=names)
            if whole_run and not any(self.options.get(flag) for flag in ("plan", "check_unapplied")):
                replenish()  # spares copied from the template as it was are dropped and copied again
            return result

    TemplateFirst.codename = base.codename
    return TemplateFirst
