"""Reads on the platform's OAuth state (the current tenant's schema)."""

from __future__ import annotations

from oauth2_provider.models import Application

from oauth.models import ClientProfile, ConsentGrant


def prior_consent(user, application: Application) -> set[str]:
    """The scopes ``user`` has already approved for ``application`` (empty if none)."""
    grant = ConsentGrant.objects.filter(user=user, application=application).only("scope").first()
    return grant.scopes if grant else set()


def is_resource_server(application: Application) -> bool:
    """Whether an admin has marked this client as a resource server (allowed to introspect)."""
    return ClientProfile.objects.filter(application=application, is_resource_server=True).exists()
