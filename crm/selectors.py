"""CRM reads. Every function takes the caller's principal and asserts the tenant itself
(tenants.guard), so a buggy caller cannot reach another tenant's rows."""

from __future__ import annotations

from django.db import connection
from django.db.models import Q

from crm.errors import NotFound
from crm.models import Contact, Note
from crm.statements import CONTACT_FIELDS, CONTACT_WITH_NOTES, LATEST_NOTES, NOTE_FIELDS
from pgtenancy.prepared import fetch_prepared
from tenants.guard import HasTenant, assert_tenant


def search_contacts(principal: HasTenant, *, query: str, limit: int = 20) -> list[Contact]:
    assert_tenant(principal)
    qs = Contact.objects.all()
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(email__icontains=query) | Q(company__icontains=query))
    return list(qs[:limit])


def get_contact(principal: HasTenant, *, contact_id: int) -> tuple[Contact, list[Note]]:
    """The contact with its latest notes, in one round trip. Plain SQL, prepared (``pgtenancy.prepared``),
    because the MCP tool and the REST API call this on every read: the ORM's compilation of the two
    querysets (or of one with an ArraySubquery) cost more than the query itself."""
    assert_tenant(principal)
    rows = fetch_prepared(CONTACT_WITH_NOTES, [LATEST_NOTES, contact_id])
    if not rows:
        raise NotFound(f"no contact {contact_id} in this workspace")
    split = len(CONTACT_FIELDS)
    contact = Contact.from_db(connection.alias, CONTACT_FIELDS, rows[0][:split])
    notes = [Note.from_db(connection.alias, NOTE_FIELDS, row[split:]) for row in rows if row[split] is not None]
    return contact, notes
