"""Rows the tests create directly in the current schema (wrap calls in ``schema_context``)."""

from __future__ import annotations

from typing import Any


def application(name: str, *, client_type: str = "public", profile: bool = False, **fields: Any):
    """An authorization-code OAuth client registered by hand (as a tenant admin would), optionally with
    its platform profile (``oauth.models.ClientProfile``)."""
    from oauth2_provider.models import Application

    from oauth.models import ClientProfile

    app = Application.objects.create(
        name=name,
        client_type=client_type,
        authorization_grant_type="authorization-code",
        redirect_uris=fields.pop("redirect_uris", "https://app.example/cb"),
        **fields,
    )
    if profile:
        ClientProfile.objects.create(application=app)
    return app


def upstream_provider(key: str, *, host: str = "upstream.example", **fields: Any):
    """An upstream OAuth provider at ``https://{host}`` (never contacted), added by hand."""
    from connectors.models import Provider

    return Provider.objects.create(
        key=key,
        display_name=fields.pop("display_name", "Upstream"),
        authorization_endpoint=f"https://{host}/authorize",
        token_endpoint=f"https://{host}/token",
        client_id=fields.pop("client_id", "platform"),
        **fields,
    )
