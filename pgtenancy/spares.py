"""Spare tenant schemas: copies of the template made ahead of time, so that creating a tenant renames
one (``ALTER SCHEMA ... RENAME``, inside the tenant's transaction) instead of running the copy's DDL.

Why: the DDL is most of a creation's time, and part of it grows with the number of tenants. Each
foreign key from a tenant table to a public table (eleven reach ``accounts_user``) adds two triggers
on that public table, and every ``ALTER TABLE`` that adds one rebuilds the public table's relcache
entry with all of them: 22,000 triggers at 1,000 tenants. A rename costs the same at any size.

- Claim (``claim_spare``, from ``pgtenancy.schemas``): under the template's shared lock, a spare
  whose fingerprint is the template's fingerprint now (``Template.fingerprint``: its identity, its
  migrations, every row and every sequence position) is locked with ``FOR UPDATE SKIP LOCKED``, its
  row deleted and the schema renamed, in the tenant's transaction: two creations never get the same
  spare, and a rolled-back creation leaves it in the pool. A spare copied from an earlier state of
  the template is never given out. No current spare: the caller copies the template directly.
- Replenish (``replenish``): after a creation commits (the Celery task ``tenants.replenish_spares``,
  queued on commit by ``pgtenancy.schemas``) and at the end of ``migrate_schemas``: spares that no
  longer match the template are dropped, then spares are copied, one per transaction, until
  ``TENANT_SPARE_SCHEMAS`` match.
  One replenisher at a time (a transaction-level advisory lock; others return at once).
- Spares are not tenants (no ``Tenant`` row): ``migrate_schemas`` does not migrate them; once the
  template changes they are dropped and copied again. Their names start with ``_tenant_spare_``:
  a leading underscore is never a valid slug, so no URL reaches one.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import schema_exists

from pgtenancy.models import SpareSchema
from pgtenancy.provisioning import Template, locked_template

log = logging.getLogger(__name__)

SPARE_PREFIX = "_tenant_spare_"
# the key's text names the module this lived in first: processes of the release before agree on it
_REPLENISH_KEY = int.from_bytes(hashlib.sha256(b"tenants.spares.replenish").digest()[:8], "big", signed=True)


def pool_size() -> int:
    return max(0, int(getattr(settings, "TENANT_SPARE_SCHEMAS", 0) or 0))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def claim_spare(template: Template, schema: str) -> bool:
    """Rename a current spare to ``schema`` in the caller's transaction; False when the pool is off or
    holds no spare matching the template as it is now."""
    if pool_size() == 0:
        return False
    fingerprint = template.fingerprint()
    while True:
        spare = (
            SpareSchema.objects.select_for_update(skip_locked=True)
            .filter(fingerprint=fingerprint)
            .order_by("pk")
            .first()
        )
        if spare is None:
            return False
        spare.delete()
        if schema_exists(spare.name):
            break
        log.warning("spare schema %s is listed but missing: forgotten", spare.name)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER SCHEMA {_q(spare.name)} RENAME TO {_q(schema)}")
    return True


def replenish() -> int:
    """Drop the spares that do not match the template (or exceed the pool size), then copy spares until
    ``TENANT_SPARE_SCHEMAS`` match it. Returns how many were copied; 0 at once when another replenisher
    is at work or there is no template to copy."""
    connection.set_schema_to_public()
    made = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_REPLENISH_KEY])
                if not cursor.fetchone()[0]:
                    return made
            template = locked_template()
            if template is None:
                return made
            fingerprint = template.fingerprint()
            spares = list(SpareSchema.objects.select_for_update(skip_locked=True).order_by("pk"))
            current = [spare for spare in spares if spare.fingerprint == fingerprint]
            for spare in [spare for spare in spares if spare.fingerprint != fingerprint] + current[pool_size() :]:
                _drop(spare)
            if len(current) >= pool_size():
                return made
            name = SPARE_PREFIX + secrets.token_hex(8)
            template.copy_into(name)
            SpareSchema.objects.create(name=name, fingerprint=fingerprint)
        made += 1


def drop_spares() -> int:
    """Drop every spare that no creation is claiming (tests, tools); returns how many."""
    with transaction.atomic():
        spares = list(SpareSchema.objects.select_for_update(skip_locked=True))
        for spare in spares:
            _drop(spare)
    return len(spares)


def _drop(spare: SpareSchema) -> None:
    with connection.cursor() as cursor:
        # a spare copied earlier in the same transaction (an outer atomic block) still has its deferred
        # foreign-key checks pending, and DROP refuses such tables: run them now (as Django's
        # check_constraints does), then defer again
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(f"DROP SCHEMA IF EXISTS {_q(spare.name)} CASCADE")
    spare.delete()
