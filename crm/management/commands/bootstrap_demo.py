"""Ensure the demo tenants ``acme`` and ``globex``, each with an admin, a member and CRM contacts.

Passwords come from the per-checkout dev secrets (var/dev.env); they are printed only when a user is
first created, so they appear once.
"""

import os

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from accounts.models import User
from crm.seed import seed_contacts
from tenants.services import add_user, create_tenant

DEMO_TENANTS = {"acme": "Acme Corp", "globex": "Globex Corporation"}


class Command(BaseCommand):
    help = "Create or refresh the demo tenants, users and data (idempotent)."

    def handle(self, *args, **options):
        passwords = {"admin": os.environ["DEMO_ADMIN_PASSWORD"], "member": os.environ["DEMO_MEMBER_PASSWORD"]}
        for slug, name in DEMO_TENANTS.items():
            tenant, outcome = create_tenant(slug=slug, name=name)
            self.stdout.write(outcome.detail)
            for role, password in passwords.items():
                email = f"{role}@{slug}.example"
                is_new = not User.objects.filter(email=email).exists()
                add_user(slug=slug, email=email, password=password if is_new else None, role=role)
                if is_new:
                    self.stdout.write(f"  demo {role}: {email} / {password}")
            with tenant_context(tenant):
                seed_contacts(slug)
