"""CRM reads. Every function takes the caller's principal and asserts the tenant itself
(tenants.guard), so a buggy caller cannot reach another tenant's rows."""

from __future__ import annotations

from django.db.models import Q

from crm.errors import NotFound
from crm.models import Contact, Note
from tenants.guard import HasTenant, assert_tenant

LATEST_NOTES = 20


def search_contacts(principal: HasTenant, *, query: str, limit: int = 20) -> list[Contact]:
    assert_tenant(principal)
    qs = Contact.objects.all()
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(email__icontains=query) | Q(company__icontains=query))
    return list(qs[:limit])


def get_contact(principal: HasTenant, *, contact_id: int) -> tuple[Contact, list[Note]]:
    """The contact with its latest notes. Two plain queries: on this stack they cost less than one
    query with an ArraySubquery, whose ORM compilation alone outweighs the extra round trip."""
    assert_tenant(principal)
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(f"no contact {contact_id} in this workspace")
    return contact, list(contact.notes.all()[:LATEST_NOTES])
