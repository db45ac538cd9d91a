from connectors.errors import ConnectorError
from connectors.services import add_provider
from tenants.management.commands._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = "Add (or update) an upstream OAuth provider in a tenant (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("tenant")
        parser.add_argument("key")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--issuer", help="discover the endpoints (RFC 8414 / OpenID discovery)")
        source.add_argument("--preset", help="github, google, microsoft, salesforce, hubspot, slack, atlassian")
        source.add_argument("--authorize-url")
        parser.add_argument("--token-url")
        parser.add_argument("--revoke-url", default="")
        parser.add_argument("--userinfo-url", default="")
        parser.add_argument("--mcp-endpoint", help="the provider's MCP endpoint (for connector_crm_search)")
        parser.add_argument("--api-base-url", help="the provider's REST API base (for connector_crm_contacts)")
        parser.add_argument("--resource", help="RFC 8707 resource to ask the provider for (sent when connecting)")
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--client-secret", default="")
        parser.add_argument("--scopes", help='space-separated, e.g. "openid offline_access"')
        parser.add_argument("--auth-method", choices=["client_secret_basic", "client_secret_post", "none"])
        parser.add_argument("--name")
        parser.add_argument("--param", action="append", default=[], help="preset placeholder, e.g. tenant=common")

    def handle(self, *args, tenant, key, **o):
        endpoints = None
        if o["authorize_url"]:
            endpoints = {
                "authorization_endpoint": o["authorize_url"],
                "token_endpoint": o["token_url"] or "",
                "revocation_endpoint": o["revoke_url"],
                "userinfo_endpoint": o["userinfo_url"],
            }
        self.run_service(
            lambda: add_provider(
                key=key,
                client_id=o["client_id"],
                client_secret=o["client_secret"],
                display_name=o["name"],
                preset_name=o["preset"],
                preset_params=dict(p.split("=", 1) for p in o["param"] if "=" in p),
                issuer=o["issuer"],
                endpoints=endpoints,
                scopes=o["scopes"].split() if o["scopes"] is not None else None,
                auth_method=o["auth_method"],
                mcp_endpoint=o["mcp_endpoint"],
                api_base_url=o["api_base_url"],
                extra_authorize_params={"resource": o["resource"]} if o["resource"] else None,
            ),
            tenant=tenant,
            refusals=(ConnectorError,),
        )
