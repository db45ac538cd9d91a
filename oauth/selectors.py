"""Reads on the platform's OAuth state (the current tenant's schema)."""

from __future__ import annotations

from oauth2_provider.models import Application

from oauth.models import ClientProfile


def is_resource_server(application: Application) -> bool:
    """Whether an admin has marked this client as a resource server (allowed to introspect)."""
    return ClientProfile.objects.filter(application=application, is_resource_server=True).exists()
