from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from identity.scim.tokens import issue_token
from tenants.errors import TenantServiceError
from tenants.selectors import get_tenant


class Command(BaseCommand):
    help = (
        "Issue the tenant's SCIM bearer token, printed once as the last word of the output (stored hashed). "
        "Running it again rotates it: the previous token keeps working for IDENTITY_SCIM_TOKEN_GRACE_SECONDS."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant")

    def handle(self, *args, tenant, **options):
        try:
            get_tenant(tenant)
        except TenantServiceError as exc:
            raise CommandError(f"{exc} [{exc.code}]") from exc
        with schema_context(tenant):
            token, retired = issue_token()
        note = f" (the previous token works for {(retired and 'the grace period') or 'no longer: there was none'})"
        self.stdout.write(f"SCIM token of {tenant} issued{note if retired else ''}. Token: {token}")
