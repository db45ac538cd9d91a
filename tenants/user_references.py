"""Tenant tables point at platform users without database-level foreign keys.

Users are shared (``public.accounts_user``); tokens, consents, connected accounts, admin log entries
and identity links that name a user live in each tenant's schema. A foreign key from a tenant table
to the user table adds two triggers on that one shared table per tenant (22,000 at 1,000 tenants):
the first ``UPDATE`` of a user on a new backend (then ``last_login`` at every login) loaded them all,
and every new tenant's ``ADD FOREIGN KEY`` rebuilt the table's cache entry with all of them. A
distributed PostgreSQL (Citus schema-based sharding, ``docs/scaling.md``) keeps only foreign keys to
reference tables; the user table is to become one (a login no longer writes it:
``accounts.models.UserLogin``), but foreign keys to it would still cost the triggers above. So:

- the project's models say ``ForeignKey(..., db_constraint=False)`` (their ``on_delete`` stays: it is
  what ``sweep_orphans`` does to a row whose user is gone);
- the tables the project does not own (django-oauth-toolkit's, the admin's ``LogEntry``) lose theirs
  in ``platform_oauth.0008_drop_third_party_user_foreign_keys``, and ``keep_dropped`` (a
  ``post_migrate`` receiver, in every schema ``migrate`` or ``migrate_schemas`` touches, the template
  included) drops any foreign key from a tenant table to a shared table that one of those packages'
  later migrations re-creates (Django's ``AlterField`` re-adds the constraint of a field it alters).
  A receiver rather than migrations with state operations: the package's own model still says
  ``db_constraint=True``, so only the database can be changed, and only after its migration ran;
- integrity is the application's: services write ids of users they have just read, a user is never
  deleted (``accounts.models``: deactivation ends memberships), and ``sweep_orphans`` (a daily
  per-tenant job, ``oauth.tasks``) treats a row pointing at a user that no longer exists as the
  foreign key would have: emptied (``SET_NULL``, and a nullable ``DO_NOTHING`` column such as
  ``ClientBlock.created_by``: the block stays) or deleted (otherwise).

``SHARED_TABLES_TENANTS_MAY_REFERENCE`` lists the public tables a tenant table may have a foreign key
to (Citus reference tables): none today. ``tests/test_distribution.py`` pins it.
"""

from __future__ import annotations

import logging

from django.apps import apps
from django.conf import settings
from django.db import connection, connections, models
from django.db.models import Model
from django_tenants.routers import TenantSyncRouter
from django_tenants.utils import get_public_schema_name

logger = logging.getLogger(__name__)

SHARED_TABLES_TENANTS_MAY_REFERENCE: frozenset[str] = frozenset()
# the migration that dropped the third-party constraints: the guard acts only where it is applied
# (so unapplying it re-adds them for good)
GUARD_MIGRATION = ("platform_oauth", "0008_drop_third_party_user_foreign_keys")


def tenant_models() -> list[type[Model]]:
    """Every model whose table exists in the tenant schemas (auto-created many-to-many tables included)."""
    router = TenantSyncRouter()
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if router.app_in_list(model._meta.app_label, settings.TENANT_APPS) and model._meta.managed
    ]


def user_reference_fields() -> list[tuple[type[Model], models.ForeignKey]]:
    """The foreign keys of tenant models to the user model, in a stable order."""
    user = apps.get_model(settings.AUTH_USER_MODEL)
    found = [
        (model, field)
        for model in tenant_models()
        for field in model._meta.concrete_fields
        if field.is_relation and field.many_to_one and field.related_model is user
    ]
    return sorted(found, key=lambda pair: (pair[0]._meta.db_table, pair[1].column))


_TO_SHARED = """
    SELECT c.conrelid::regclass::text, c.conname, f.relname
      FROM pg_constraint c
      JOIN pg_class f ON f.oid = c.confrelid
     WHERE c.contype = 'f'
       AND c.conrelid IN (SELECT to_regclass(format('%%I.%%I', %s::text, t)) FROM unnest(%s::text[]) t)
       AND f.relnamespace = %s::regnamespace
       AND NOT f.relname = ANY(%s::text[])
     ORDER BY 1, 2
"""


def foreign_keys_to_shared_tables(schema: str, *, using: str = "default") -> list[tuple[str, str, str]]:
    """(table, constraint, shared table) of each foreign key from a tenant model's table in ``schema``
    to a public table not in ``SHARED_TABLES_TENANTS_MAY_REFERENCE``. Looked up by the tables'
    names (indexed), not by scanning ``pg_constraint``, which holds every tenant's constraints."""
    tables = sorted({model._meta.db_table for model in tenant_models()})
    with connections[using].cursor() as cursor:
        cursor.execute(
            _TO_SHARED, [schema, tables, get_public_schema_name(), sorted(SHARED_TABLES_TENANTS_MAY_REFERENCE)]
        )
        return [tuple(row) for row in cursor.fetchall()]


def drop_foreign_keys_to_shared_tables(schema: str, *, using: str = "default") -> list[str]:
    dropped = []
    quote = connections[using].ops.quote_name
    with connections[using].cursor() as cursor:
        for table, name, target in foreign_keys_to_shared_tables(schema, using=using):
            # ``table`` is regclass text: already quoted and qualified where needed
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
            logger.warning("dropped the foreign key %s from %s to the shared table %s", name, table, target)
            dropped.append(name)
    return dropped


def _guard_applies(using: str) -> bool:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT 1 FROM django_migrations WHERE app = %s AND name = %s", list(GUARD_MIGRATION))
        return cursor.fetchone() is not None


def keep_dropped(sender, using: str = "default", **kwargs) -> None:
    """``post_migrate`` (connected once, for the tenants app): in a tenant schema (or the template)
    where the dropping migration is applied, drop any foreign key to a shared table that a package's
    migration re-created."""
    schema = getattr(connections[using], "schema_name", get_public_schema_name())
    if schema == get_public_schema_name() or not _guard_applies(using):
        return
    drop_foreign_keys_to_shared_tables(schema, using=using)


def sweep_orphans() -> dict[str, int]:
    """In the current tenant schema: rows pointing at a user id that ``public.accounts_user`` no
    longer has, deleted or emptied as their foreign key's ``on_delete`` says (``SET_NULL``, or a
    nullable ``DO_NOTHING``: emptied; otherwise deleted, with what cascades from them in this
    schema). Two reads per column and one of the user table, no join across schemas."""
    user = apps.get_model(settings.AUTH_USER_MODEL)
    fields = user_reference_fields()
    seen: dict[tuple[type[Model], models.ForeignKey], set[int]] = {}
    for model, field in fields:
        values = model._base_manager.exclude(**{f"{field.attname}__isnull": True}).values_list(field.attname, flat=True)
        seen[(model, field)] = set(values.distinct())
    every = set().union(*seen.values()) if seen else set()
    existing = set(user._base_manager.filter(pk__in=every).values_list("pk", flat=True)) if every else set()
    counts: dict[str, int] = {}
    for (model, field), ids in seen.items():
        gone = sorted(ids - existing)
        if not gone:
            continue
        rows = model._base_manager.filter(**{f"{field.attname}__in": gone})
        on_delete = field.remote_field.on_delete
        if on_delete is models.SET_NULL or (field.null and on_delete is models.DO_NOTHING):
            counts[f"{model._meta.label_lower}.{field.name}_emptied"] = rows.update(**{field.attname: None})
        else:
            deleted, _ = rows.delete()
            counts[f"{model._meta.label_lower}.{field.name}_deleted"] = deleted
    if counts:
        logger.warning("rows of users that no longer exist in %s: %s", connection.schema_name, counts)
    return counts
