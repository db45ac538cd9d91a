import argparse

from django.core.management.base import CommandError

from identity.errors import IdentityError
from identity.models import IdentityProvider
from identity.services import NOT_GIVEN, add_provider
from tenants.management.commands._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = (
        "Add (or update) an OpenID provider members of a tenant sign in with (idempotent). The endpoints "
        "come from the issuer's discovery document. --email-domain and --link-by-email are the platform "
        "operator's: the tenant admin cannot set them."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant")
        parser.add_argument("key")
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--client-id")
        parser.add_argument("--client-secret")
        parser.add_argument("--name", help='shown as "Sign in with NAME"')
        parser.add_argument("--email-domain", action="append", dest="email_domains", help="repeatable")
        parser.add_argument("--jit-role", choices=IdentityProvider.JitRole.values)
        parser.add_argument("--role-claim", help="ID token claim carrying the role (a string or a list)")
        parser.add_argument("--admin-value", help="the role claim's value that means admin")
        parser.add_argument(
            "--organization", help="CLAIM=VALUE where one issuer serves many organisations (tid=..., hd=...)"
        )
        # --no-link-by-email / --no-accept-id-jag turn them off (removing the ID-JAG trust revokes the
        # tokens issued from that provider's ID-JAGs: oauth.receivers)
        parser.add_argument("--link-by-email", action=argparse.BooleanOptionalAction, default=None)
        parser.add_argument(
            "--accept-id-jag",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="trust ID-JAGs signed by this issuer (enterprise-managed authorization)",
        )

    def handle(self, *args, tenant, key, **o):
        def given(value):
            return NOT_GIVEN if value is None else value

        organization = NOT_GIVEN
        if o["organization"] is not None:
            claim, sep, value = o["organization"].partition("=")
            if not sep or not claim or not value:
                raise CommandError("--organization takes CLAIM=VALUE, e.g. tid=<directory id> [invalid_organization]")
            organization = (claim, value)
        self.run_service(
            lambda: add_provider(
                key=key,
                issuer=o["issuer"],
                client_id=given(o["client_id"]),
                client_secret=given(o["client_secret"]),
                name=given(o["name"]),
                email_domains=given(o["email_domains"]),
                jit_role=given(o["jit_role"]),
                role_claim=given(o["role_claim"]),
                admin_value=given(o["admin_value"]),
                organization=organization,
                link_by_email=given(o["link_by_email"]),
                accept_id_jag=given(o["accept_id_jag"]),
            ),
            tenant=tenant,
            refusals=(IdentityError,),
        )
