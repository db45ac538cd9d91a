"""Reads on the platform's OAuth state (the current tenant's schema)."""

from __future__ import annotations

from urllib.parse import urlsplit

from oauth2_provider.models import Application

from oauth.client_policy import ClientFacts
from oauth.models import ChallengeChannel, ClientProfile, ConsentGrant
from oauth.shared.selectors import channel_from_rules


def prior_consent(user, application: Application) -> set[str]:
    """The scopes ``user`` has already approved for ``application`` (empty if none)."""
    grant = ConsentGrant.objects.filter(user=user, application=application).only("scope").first()
    return grant.scopes if grant else set()


def is_resource_server(application: Application) -> bool:
    """Whether an admin has marked this client as a resource server (allowed to introspect)."""
    return ClientProfile.objects.filter(application=application, is_resource_server=True).exists()


def challenge_channel_of(application_id: int | None) -> str:
    """The channel a client's refusals are answered in (``ClientProfile.challenge_channel``; HTTP for
    no client or a client without a profile)."""
    if application_id is None:
        return ChallengeChannel.HTTP
    profile = ClientProfile.objects.filter(application_id=application_id).values_list("challenge_channel", flat=True)
    return profile.first() or ChallengeChannel.HTTP


def choose_challenge_channel(*, facts: ClientFacts, client_id_host: str = "") -> str:
    """The explicit ``mcp_challenge_channel`` wins; then the platform's rule table (CIMD client_id
    host, redirect URI hosts, software_id); otherwise the HTTP channel."""
    if facts.declared_channel:
        return facts.declared_channel
    redirect_hosts = [urlsplit(uri).hostname or "" for uri in facts.redirect_uris]
    ruled = channel_from_rules(
        client_id_host=client_id_host, redirect_hosts=redirect_hosts, software_id=facts.software_id
    )
    return ruled or ChallengeChannel.HTTP
