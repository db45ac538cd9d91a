"""Challenge-channel rules: which channel a newly seen client gets, from what it presents."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.http.request import validate_host

from oauth.models import ChallengeChannel


class ChallengeChannelRule(models.Model):
    """One rule of the platform-wide table applied when a client profile is created.

    Host patterns use Django's ``ALLOWED_HOSTS`` syntax: ``chatgpt.com`` matches that host only,
    ``.chatgpt.com`` matches it and every subdomain. ``software_id`` patterns match exactly.
    Rules are tried by ascending ``priority`` (then id); the first enabled match wins.
    """

    class MatchOn(models.TextChoices):
        CLIENT_ID_HOST = "client_id_host", "CIMD client_id host"
        REDIRECT_URI_HOST = "redirect_uri_host", "redirect URI host (any of the client's)"
        SOFTWARE_ID = "software_id", "software_id (exact)"

    match_on = models.CharField(max_length=32, choices=MatchOn.choices)
    pattern = models.CharField(
        max_length=255, help_text="Host (`example.com`), domain with subdomains (`.example.com`) or software_id."
    )
    channel = models.CharField(max_length=16, choices=ChallengeChannel.choices)
    priority = models.PositiveIntegerField(default=100, help_text="Lower runs first; the first match wins.")
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("priority", "id")
        constraints = [models.UniqueConstraint(fields=("match_on", "pattern"), name="unique_channel_rule")]

    def __str__(self) -> str:
        return f"{self.get_match_on_display()} {self.pattern} -> {self.channel}"

    def clean(self) -> None:
        if self.match_on == self.MatchOn.SOFTWARE_ID:
            return
        self.pattern = (self.pattern or "").strip().lower()
        host = self.pattern.removeprefix(".")
        if not host or any(ch in host for ch in "/:@ *?#") or "." not in host:
            raise ValidationError({"pattern": "a host name such as chatgpt.com or .openai.com"})

    def matches(self, *, client_id_host: str, redirect_hosts: list[str], software_id: str) -> bool:
        if self.match_on == self.MatchOn.SOFTWARE_ID:
            return bool(software_id) and software_id == self.pattern
        if self.match_on == self.MatchOn.CLIENT_ID_HOST:
            return bool(client_id_host) and validate_host(client_id_host, [self.pattern])
        return any(validate_host(host, [self.pattern]) for host in redirect_hosts if host)
