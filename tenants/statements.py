"""The tenants app's hand-written SQL, each statement beside the ORM expression it mirrors (the rule);
``tests/test_statements.py`` runs both on the same rows. Change them together.

Routing runs these on every request: plain SQL on the schema-qualified tables needs no particular
search_path (routing does not switch the connection to public first) and skips ORM compilation."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Domain, Tenant

TENANT_FIELDS = [f.attname for f in Tenant._meta.concrete_fields]


def tenant_by_slug_rule(slug: str) -> QuerySet[Tenant]:
    return Tenant.objects.filter(schema_name=slug)


TENANT_BY_SLUG = f"SELECT {', '.join(TENANT_FIELDS)} FROM public.{Tenant._meta.db_table} WHERE schema_name = %s"  # noqa: S608


def tenant_by_host_rule(host: str) -> QuerySet[Tenant]:
    return Tenant.objects.filter(domains__domain=host)


TENANT_BY_HOST = (
    f"SELECT {', '.join('t.' + f for f in TENANT_FIELDS)} FROM public.{Tenant._meta.db_table} t "  # noqa: S608
    f"JOIN public.{Domain._meta.db_table} d ON d.tenant_id = t.id WHERE d.domain = %s"
)
