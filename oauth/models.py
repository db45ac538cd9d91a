"""What the platform adds to django-oauth-toolkit's tables (all in the tenant schema)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from oauth2_provider.models import Application


class ChallengeChannel(models.TextChoices):
    HTTP = "http", "HTTP 401/403 with WWW-Authenticate (MCP authorization spec)"
    TOOL_RESULT = "tool_result", "tools/call result with _meta['mcp/www_authenticate'] (Apps SDK)"


class ClientProfile(models.Model):
    """Registration facts DOT's Application does not keep, and the client's challenge channel."""

    class ApplicationType(models.TextChoices):
        WEB = "web", "web"
        NATIVE = "native", "native"

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="profile")
    application_type = models.CharField(max_length=16, choices=ApplicationType.choices, default="web")
    challenge_channel = models.CharField(
        max_length=16,
        choices=ChallengeChannel.choices,
        default=ChallengeChannel.HTTP,
        help_text="How this client is told about auth failures on tools/call. Defaulted at registration.",
    )
    software_id = models.CharField(max_length=255, blank=True)
    is_resource_server = models.BooleanField(
        default=False,
        help_text="May call the introspection endpoint (RFC 7662). Set by an admin, never by registration.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.application_id}"


class ConsentGrant(models.Model):
    """Scopes a user has approved for a client, remembered so a later request only asks for new ones."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="consents")
    scope = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("user", "application"), name="unique_consent")]

    def __str__(self) -> str:
        return f"consent of user {self.user_id} for {self.application_id}"

    @property
    def scopes(self) -> set[str]:
        return set(self.scope.split())


class RedeemedCode(models.Model):
    """An exchanged authorization code (by checksum) and the token family it produced, so a replayed
    code revokes that family (RFC 9700 §4.5)."""

    code_checksum = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    token_family = models.UUIDField(null=True)
    redeemed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"redeemed code {self.pk}"


class GraceRedemption(models.Model):
    """A rotated refresh token that was already honoured once in the lost-response grace window."""

    refresh_token = models.OneToOneField(
        "oauth2_provider.RefreshToken", on_delete=models.CASCADE, related_name="grace_redemption"
    )
    redeemed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"grace redemption {self.pk}"
