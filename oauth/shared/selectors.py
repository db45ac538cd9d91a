"""Reads on the platform-wide OAuth policy (public schema; visible from every tenant's search_path)."""

from __future__ import annotations

from oauth.shared.models import ChallengeChannelRule


def channel_from_rules(*, client_id_host: str = "", redirect_hosts: list[str], software_id: str = "") -> str | None:
    """The channel of the first enabled rule that matches the client, or None."""
    client_id_host = client_id_host.lower()
    redirect_hosts = [host.lower() for host in redirect_hosts]
    for rule in ChallengeChannelRule.objects.filter(enabled=True):
        if rule.matches(client_id_host=client_id_host, redirect_hosts=redirect_hosts, software_id=software_id):
            return rule.channel
    return None
