from tenants.management.commands._base import ProvisioningCommand
from tenants.models import Membership
from tenants.services import add_user


class Command(ProvisioningCommand):
    help = "Add a user to a tenant (creating the user if missing; re-activating an ended membership)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--password", help="required when the user does not exist yet")
        parser.add_argument("--role", choices=Membership.Role.values, default=Membership.Role.MEMBER)

    def handle(self, *args, slug, email, password, role, **options):
        self.run_service(lambda: add_user(slug=slug, email=email, password=password, role=role))
