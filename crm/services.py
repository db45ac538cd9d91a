"""CRM writes. Each runs inside ``tenants.guard.tenant_write``: one transaction that first re-checks,
with the membership row locked, that the principal still belongs to the tenant being written."""

from __future__ import annotations

from crm.errors import NotFound
from crm.models import Contact, Note
from tenants.guard import HasTenant, tenant_write

EDITABLE_FIELDS = ("name", "email", "company", "phone")


def create_note(*, principal: HasTenant, contact_id: int, body: str) -> Note:
    with tenant_write(principal):
        contact = Contact.objects.select_for_update().filter(pk=contact_id).first()
        if contact is None:
            raise NotFound(f"no contact {contact_id} in this workspace")
        return Note.objects.create(contact=contact, body=body, author_user_id=principal.user_id)


def update_contact(*, principal: HasTenant, contact_id: int, changes: dict[str, str]) -> Contact:
    with tenant_write(principal):
        contact = Contact.objects.select_for_update().filter(pk=contact_id).first()
        if contact is None:
            raise NotFound(f"no contact {contact_id} in this workspace")
        for field in EDITABLE_FIELDS:
            if field in changes:
                setattr(contact, field, changes[field])
        contact.full_clean()
        contact.save()
        return contact


def delete_contact(*, principal: HasTenant, contact_id: int) -> None:
    with tenant_write(principal):
        deleted, _ = Contact.objects.filter(pk=contact_id).delete()
        if not deleted:
            raise NotFound(f"no contact {contact_id} in this workspace")
