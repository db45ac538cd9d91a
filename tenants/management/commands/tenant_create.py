from tenants.management.commands._base import ProvisioningCommand
from tenants.services import create_tenant


class Command(ProvisioningCommand):
    help = "Create a tenant and its schema (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--domain", help="an optional own host name for the tenant")

    def handle(self, *args, slug, name, domain, **options):
        self.run_service(lambda: create_tenant(slug=slug, name=name, domain=domain))
