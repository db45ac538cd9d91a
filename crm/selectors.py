"""CRM reads. Every function takes the caller's principal and asserts the tenant itself
(tenants.guard), so a buggy caller cannot reach another tenant's rows."""

from __future__ import annotations

from django.db import connection
from django.db.models import Q

from crm.errors import NotFound
from crm.models import Contact, Note
from tenants.guard import HasTenant, assert_tenant
from tenants.prepared import TenantStatement, fetch_prepared

LATEST_NOTES = 20


def search_contacts(principal: HasTenant, *, query: str, limit: int = 20) -> list[Contact]:
    assert_tenant(principal)
    qs = Contact.objects.all()
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(email__icontains=query) | Q(company__icontains=query))
    return list(qs[:limit])


_CONTACT_FIELDS = [f.attname for f in Contact._meta.concrete_fields]
_NOTE_FIELDS = [f.attname for f in Note._meta.concrete_fields]
_NOTE_ORDER = "created_at DESC, id DESC"  # Note.Meta.ordering
# The contact and its latest notes in one statement (LATERAL keeps the per-contact LIMIT); the tenant's
# tables schema-qualified, one prepared statement per schema (tenants.prepared)
_CONTACT_WITH_NOTES = TenantStatement(f"""
    SELECT {", ".join("c." + f for f in _CONTACT_FIELDS)}, {", ".join("n." + f for f in _NOTE_FIELDS)}
      FROM {{tenant}}.{Contact._meta.db_table} c
      LEFT JOIN LATERAL (
            SELECT {", ".join(_NOTE_FIELDS)} FROM {{tenant}}.{Note._meta.db_table}
             WHERE contact_id = c.id ORDER BY {_NOTE_ORDER} LIMIT %s
      ) n ON TRUE
     WHERE c.id = %s
     ORDER BY n.created_at DESC, n.id DESC
""")  # noqa: S608 (names from model metadata, values are parameters)


def get_contact(principal: HasTenant, *, contact_id: int) -> tuple[Contact, list[Note]]:
    """The contact with its latest notes, in one round trip. Plain SQL, prepared (``tenants.prepared``),
    because the MCP tool and the REST API call this on every read: the ORM's compilation of the two
    querysets (or of one with an ArraySubquery) cost more than the query itself."""
    assert_tenant(principal)
    rows = fetch_prepared(_CONTACT_WITH_NOTES, [LATEST_NOTES, contact_id])
    if not rows:
        raise NotFound(f"no contact {contact_id} in this workspace")
    split = len(_CONTACT_FIELDS)
    contact = Contact.from_db(connection.alias, _CONTACT_FIELDS, rows[0][:split])
    notes = [Note.from_db(connection.alias, _NOTE_FIELDS, row[split:]) for row in rows if row[split] is not None]
    return contact, notes
