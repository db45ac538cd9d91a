from tenants.management.commands._base import ProvisioningCommand
from tenants.services import deactivate_tenant


class Command(ProvisioningCommand):
    help = "Deactivate a tenant: it is no longer served and its tokens stop working."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        self.run_service(lambda: deactivate_tenant(slug=slug))
