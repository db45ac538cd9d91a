"""Tenant guard for domain services: a handler bug cannot read or write across tenants.

Every domain service asserts that the principal's tenant is the schema the connection is in, and
every write re-checks, inside its own transaction and with the membership row locked against a
concurrent removal, that the principal still belongs to that (active) tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from django.db import connection, transaction

from tenants.models import Membership, Tenant


class TenantGuardError(Exception):
    """The principal does not belong to the tenant whose schema is being touched."""


class HasTenant(Protocol):
    user_id: int | None
    tenant_id: int
    tenant_slug: str


def assert_tenant(principal: HasTenant) -> Tenant:
    tenant = getattr(connection, "tenant", None)
    if (
        not isinstance(tenant, Tenant)
        or tenant.pk != principal.tenant_id
        or connection.schema_name != principal.tenant_slug
    ):
        raise TenantGuardError("the principal's tenant is not the tenant being accessed")
    return tenant


@contextmanager
def tenant_write(principal: HasTenant) -> Iterator[Tenant]:
    tenant = assert_tenant(principal)
    if principal.user_id is None:
        raise TenantGuardError("anonymous callers cannot write")
    with transaction.atomic():
        still_member = (
            Membership.objects.active()
            .select_for_update(no_key=True, of=("self",))
            .filter(user_id=principal.user_id, tenant_id=tenant.pk)
            .values_list("id", flat=True)[:1]
        )
        if not list(still_member):
            raise TenantGuardError("the principal no longer belongs to this tenant")
        yield tenant
