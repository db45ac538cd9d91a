from tenants.management.commands._base import ProvisioningCommand
from tenants.services import remove_user


class Command(ProvisioningCommand):
    help = "End a user's membership of a tenant (their tenant tokens are revoked)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")

    def handle(self, *args, slug, email, **options):
        self.run_service(lambda: remove_user(slug=slug, email=email))
