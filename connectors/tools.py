"""MCP tools of the connectors app. A connector failure is not an auth failure of the MCP token: the
tool answers an ``isError`` result with class ``CONNECTOR_REAUTH_REQUIRED`` (and the connect URL)
or ``CONNECTOR_UNAVAILABLE`` in ``structuredContent``."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from connectors import selectors, tokens, upstream
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from mcp_tools.principal import ToolContext
from mcp_tools.registry import ToolArgumentError, ToolConnectorError, tool

PROFILE_FIELDS = ("sub", "email", "email_verified", "name", "preferred_username", "login", "id")


def connect_url(tenant_slug: str, provider_key: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/t/{tenant_slug}/connections/{provider_key}/connect/"


def connector_failure(context: ToolContext, provider_key: str, exc: ConnectorError) -> ToolConnectorError:
    if isinstance(exc, ProviderUnavailable):
        return ToolConnectorError(
            f"{provider_key} is unavailable right now; try again later",
            {"class": "CONNECTOR_UNAVAILABLE", "provider": provider_key, "reason": exc.code, "retryable": True},
        )
    url = connect_url(context.principal.tenant_slug, provider_key)
    return ToolConnectorError(
        f"Connect your {provider_key} account first: {url}",
        {
            "class": "CONNECTOR_REAUTH_REQUIRED",
            "provider": provider_key,
            "reason": exc.code,
            "connect_url": url,
            "retryable": True,
        },
    )


@tool(
    name="connector_profile",
    title="Connected account profile",
    description="Your profile at a connected provider (OpenID userinfo), e.g. to confirm which account is connected.",
    input_schema={
        "type": "object",
        "properties": {"provider": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}},
        "required": ["provider"],
        "additionalProperties": False,
    },
    scopes=("connections",),
    read_only=True,
)
def connector_profile(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    key = arguments["provider"]
    provider = selectors.provider_by_key(key)
    if provider is None or not provider.userinfo_endpoint:
        raise ToolArgumentError(f"no provider {key!r} with a userinfo endpoint in this workspace")
    user_id = context.principal.user_id
    try:
        token = tokens.access_token(user_id=user_id, provider_key=key)
        try:
            info = upstream.userinfo(provider, token)
        except ConnectorError as exc:
            if exc.code != "invalid_token":
                raise
            # the provider refused a token we thought valid (revoked upstream): one refresh decides
            account = selectors.account_of_user(user_id, key)
            token = tokens.refresh_account(account_id=account.pk, margin_seconds=10**9)
            info = upstream.userinfo(provider, token)
    except (ReauthRequired, ProviderUnavailable) as exc:
        raise connector_failure(context, key, exc) from exc
    except ConnectorError as exc:
        raise connector_failure(context, key, ProviderUnavailable(exc.code, str(exc))) from exc
    return {"provider": key, "profile": {k: info[k] for k in PROFILE_FIELDS if k in info}}
