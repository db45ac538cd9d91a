"""Tenant schemas compared by their catalog signature (columns, relations, indexes, constraints,
sequences and the rows migrations write), used, and dropped."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from tenants.models import Tenant

TEMPLATE = settings.TENANT_TEMPLATE_SCHEMA


SIGNATURE = {
    "columns": """
        SELECT c.relname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               replace(coalesce(pg_get_expr(d.adbin, d.adrelid), ''), %(s)s || '.', 'S.'), a.attidentity,
               a.attgenerated, a.attcollation
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = %(s)s::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped""",
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.relhasindex, c.relchecks, c.relhastriggers
        FROM pg_class c WHERE c.relnamespace = %(s)s::regnamespace AND c.relkind <> 't'""",
    "indexes": """
        SELECT c.relname, replace(pg_get_indexdef(i.indexrelid), ' ' || %(s)s || '.', ' S.'), i.indisunique,
               i.indisprimary, i.indisvalid
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = %(s)s::regnamespace""",
    "constraints": """
        SELECT t.relname, k.conname, k.contype, replace(pg_get_constraintdef(k.oid), ' ' || %(s)s || '.', ' S.'),
               k.convalidated, k.condeferrable,
               k.condeferred, coalesce(ft.relnamespace = k.connamespace, true)
        FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid LEFT JOIN pg_class ft ON ft.oid = k.confrelid
        WHERE k.connamespace = %(s)s::regnamespace""",
    "sequences": """
        SELECT s.sequencename, s.data_type::text, s.start_value, s.min_value, s.max_value, s.increment_by,
               s.cycle, s.cache_size, t.relname, a.attname, d.deptype
        FROM pg_sequences s
        JOIN pg_class sc ON sc.relname = s.sequencename AND sc.relnamespace = %(s)s::regnamespace
        JOIN pg_depend d
          ON d.objid = sc.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.schemaname = %(s)s""",
}


ROWS = {
    "migrations": "SELECT app, name FROM {s}.django_migrations",
    "content types": "SELECT app_label, model FROM {s}.django_content_type",
    "permissions": """SELECT ct.app_label, ct.model, p.codename, p.name FROM {s}.auth_permission p
                      JOIN {s}.django_content_type ct ON ct.id = p.content_type_id""",
    "scope matrix defaults": "SELECT tool_name, enabled, scopes, noauth FROM {s}.mcp_tools_toolpolicy",
}


def signature(schema: str) -> dict[str, list[tuple]]:
    found = {}
    with connection.cursor() as cursor:
        for name, sql in SIGNATURE.items():
            cursor.execute(sql, {"s": schema})
            found[name] = sorted(cursor.fetchall(), key=repr)
        for name, sql in ROWS.items():
            cursor.execute(sql.format(s=f'"{schema}"'))
            found[name] = sorted(cursor.fetchall(), key=repr)
    return found


def assert_same_schema(left: str, right: str) -> None:
    a, b = signature(left), signature(right)
    for part in a:
        assert a[part], f"{part} of {left} is empty: the signature query is wrong"
        assert a[part] == b[part], f"{part} differ between {left} and {right}"


def use_the_tenant(slug: str) -> None:
    """Inserts into tables whose identity sequences were copied (rows already there) and into empty
    ones, and the CRM service the tools call."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from crm.models import Contact, Note
    from mcp_tools.models import ToolPolicy

    with schema_context(slug):
        ct = ContentType.objects.create(app_label="provisioning_test", model="thing")
        Permission.objects.create(content_type=ct, codename="poke_thing", name="Can poke")
        ToolPolicy.objects.create(tool_name="provisioning_test_tool", scopes="crm.read")
        contact = Contact.objects.create(name="Ada", email="ada@example.test", company="X")
        Note.objects.create(contact=contact, body="first", author_user_id=1)
        assert Contact.objects.count() == 1


def drop(*slugs: str) -> None:
    for slug in slugs:
        tenant = Tenant.objects.filter(schema_name=slug).first()
        if tenant is not None:
            tenant.delete(force_drop=True)
