"""The CRM's hand-written SQL, each statement beside the ORM expression it mirrors (the rule);
``tests/test_statements.py`` runs both on the same rows. Change them together."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import Contact, Note
from pgtenancy.prepared import TenantStatement

LATEST_NOTES = 20
CONTACT_FIELDS = [f.attname for f in Contact._meta.concrete_fields]
NOTE_FIELDS = [f.attname for f in Note._meta.concrete_fields]


def contact_with_notes_rule(contact_id: int, latest: int) -> tuple[QuerySet[Contact], QuerySet[Note]]:
    """The contact, and its latest notes in ``Note.Meta.ordering``."""
    return Contact.objects.filter(pk=contact_id), Note.objects.filter(contact_id=contact_id)[:latest]


# The contact and its latest notes in one statement (LATERAL keeps the per-contact LIMIT); the tenant's
# tables schema-qualified, one prepared statement per schema (pgtenancy.prepared). Parameters: the
# number of notes, the contact's id.
CONTACT_WITH_NOTES = TenantStatement(f"""
    SELECT {", ".join("c." + f for f in CONTACT_FIELDS)}, {", ".join("n." + f for f in NOTE_FIELDS)}
      FROM {{tenant}}.{Contact._meta.db_table} c
      LEFT JOIN LATERAL (
            SELECT {", ".join(NOTE_FIELDS)} FROM {{tenant}}.{Note._meta.db_table}
             WHERE contact_id = c.id ORDER BY created_at DESC, id DESC LIMIT %s
      ) n ON TRUE
     WHERE c.id = %s
     ORDER BY n.created_at DESC, n.id DESC
""")  # noqa: S608 (names from model metadata, values are parameters)
