"""Demo CRM rows per tenant, so the bundled tools have something to read on a fresh platform."""

from crm.models import Contact

DEMO_CONTACTS = {
    "acme": [
        ("Ada Lovelace", "ada@acme.example", "Acme Analytics"),
        ("Grace Hopper", "grace@acme.example", "Acme Compilers"),
        ("Alan Turing", "alan@acme.example", "Acme Research"),
    ],
    "globex": [
        ("Hank Scorpio", "hank@globex.example", "Globex Corporation"),
        ("Homer Simpson", "homer@globex.example", "Globex Safety"),
    ],
}


def seed_contacts(slug: str) -> int:
    """Create the demo contacts missing from the current tenant's schema; return how many were made."""
    made = 0
    for name, email, company in DEMO_CONTACTS.get(slug, []):
        _, created = Contact.objects.get_or_create(email=email, defaults={"name": name, "company": company})
        made += created
    return made
