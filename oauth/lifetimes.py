"""Token lifetimes that depend on the tenant. Referenced from settings, so no model imports here."""

from __future__ import annotations

from django.conf import settings
from django.db import connection


def access_token_expires_in(request: object) -> int:
    """oauthlib calls this for every issued token: the current tenant's access-token lifetime."""
    tenant = getattr(connection, "tenant", None)
    return int(getattr(tenant, "access_token_lifetime_seconds", 0) or settings.OAUTH_ACCESS_TOKEN_SECONDS)
