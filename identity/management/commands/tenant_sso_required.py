from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from identity.services import set_sso_required
from tenants.errors import TenantServiceError
from tenants.selectors import get_tenant


class Command(BaseCommand):
    help = "Require sign-in through the tenant's identity provider (on) or not (off). Admins keep a password."

    def add_arguments(self, parser):
        parser.add_argument("tenant")
        parser.add_argument("state", choices=["on", "off"])

    def handle(self, *args, tenant, state, **options):
        try:
            get_tenant(tenant)
        except TenantServiceError as exc:
            raise CommandError(f"{exc} [{exc.code}]") from exc
        with schema_context(tenant):
            outcome = set_sso_required(required=state == "on")
        self.stdout.write(self.style.SUCCESS(outcome.detail) if outcome.changed else outcome.detail)
