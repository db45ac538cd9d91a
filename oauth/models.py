"""What the platform adds to django-oauth-toolkit's tables (all in the tenant schema)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from fernet_fields import EncryptedJSONField
from oauth2_provider.models import Application


class ChallengeChannel(models.TextChoices):
    HTTP = "http", "HTTP 401/403 with WWW-Authenticate (MCP authorization spec)"
    TOOL_RESULT = "tool_result", "tools/call result with _meta['mcp/www_authenticate'] (Apps SDK)"


class TokenEndpointAuthMethod(models.TextChoices):
    DOT = "", "as django-oauth-toolkit decides (a client secret, or none for a public client)"
    PRIVATE_KEY_JWT = "private_key_jwt", "private_key_jwt (RFC 7523 client assertion signed with the client's key)"


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
    # CIMD clients only: how the client authenticates at the token and revocation endpoints, from its
    # metadata document (DOT itself keeps every CIMD client public; oauth.client_assertion)
    token_endpoint_auth_method = models.CharField(
        max_length=32, choices=TokenEndpointAuthMethod.choices, default=TokenEndpointAuthMethod.DOT, blank=True
    )
    signing_alg = models.CharField(max_length=8, blank=True)  # the document's token_endpoint_auth_signing_alg
    jwks = models.JSONField(null=True, blank=True)  # public keys: the document's own, or jwks_uri's last answer
    jwks_uri = models.URLField(max_length=2000, blank=True)
    jwks_expires_at = models.DateTimeField(null=True, blank=True)  # jwks_uri's answer is fresh until then
    jwks_fetched_at = models.DateTimeField(null=True, blank=True)  # the last fetch of jwks_uri (rate limit)
    # enterprise-managed authorization (oauth.id_jag): the client registered the JWT bearer grant (DCR,
    # a CIMD document) or the tenant admin allowed it; it must also be confidential to present ID-JAGs
    jwt_bearer_grant = models.BooleanField(
        default=False,
        help_text="May present ID-JAGs from the tenant's trusted identity providers (JWT bearer grant). "
        "Confidential clients only.",
    )

    def __str__(self) -> str:
        return f"profile of {self.application_id}"

    @property
    def uses_private_key_jwt(self) -> bool:
        return self.token_endpoint_auth_method == TokenEndpointAuthMethod.PRIVATE_KEY_JWT


class ConsentGrant(models.Model):
    """Scopes a user has approved for a client, remembered so a later request only asks for new ones."""

    # no database-level foreign key to the shared user table (tenants.user_references says why)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_constraint=False, related_name="+")
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
    code revokes that family (RFC 9700 §4.5), but only when the replay is otherwise valid: the same
    client and a PKCE verifier matching the code's challenge (kept here; a challenge is public)."""

    code_checksum = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    token_family = models.UUIDField(null=True)
    code_challenge = models.CharField(max_length=128, blank=True, default="")
    code_challenge_method = models.CharField(max_length=10, blank=True, default="")
    redeemed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"redeemed code {self.pk}"


class RefreshSuccessor(models.Model):
    """The pair a rotated refresh token was exchanged for, encrypted with the platform's Fernet keys,
    kept only for the grace window so that every duplicate of that refresh gets the same answer."""

    refresh_token = models.OneToOneField(
        "oauth2_provider.RefreshToken", on_delete=models.CASCADE, related_name="platform_successor"
    )
    successor = models.ForeignKey("oauth2_provider.RefreshToken", on_delete=models.CASCADE, related_name="+")
    token_family = models.UUIDField(db_index=True)
    pair = EncryptedJSONField()  # {"access_token": ..., "refresh_token": ...}
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:  # never the pair
        return f"refresh successor {self.pk}"


class StepUpChallenge(models.Model):
    """The resource server answered ``insufficient_scope`` to a token of this family: for a short
    window a refresh that cannot satisfy the challenge is refused, so clients that refresh instead of
    re-authorizing (TS SDK 1.x) start a new authorization (oauth.stepup)."""

    token_family = models.UUIDField(unique=True)
    scope = models.TextField()
    challenged_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"step-up challenge {self.pk}"


class ClientAssertionJti(models.Model):
    """The ``jti`` of every client assertion accepted, until its ``exp``: a second presentation of the
    same assertion is refused. In the database, not the cache, so the check fails closed."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    jti_hash = models.CharField(max_length=64)  # SHA-256 of the jti: bounded, whatever the client sent
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("application", "jti_hash"), name="unique_assertion_jti")]

    def __str__(self) -> str:
        return f"client assertion {self.pk}"


class AssertedTokenFamily(models.Model):
    """A token family issued to a client that authenticated with a client assertion: every refresh of
    it needs one too, whatever the client's document says later (no downgrade to a public client)."""

    token_family = models.UUIDField(unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"asserted token family {self.pk}"


class ClientBlock(models.Model):
    """A client the tenant admin disabled (``oauth.client_blocks``): matched by its client id, by the
    host of a CIMD client id (every client id on it), or, for dynamically registered clients, by
    ``software_id`` or a redirect URI host, so that registering again does not bring it back."""

    class Kind(models.TextChoices):
        CLIENT_ID = "client_id", "client id"
        CIMD_HOST = "cimd_host", "CIMD host (every client id on it)"
        SOFTWARE_ID = "software_id", "software_id (DCR)"
        REDIRECT_HOST = "redirect_host", "redirect URI host (DCR)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=500)
    reason = models.CharField(max_length=200, blank=True)
    # a tenant schema pointing at a platform user: no database-level foreign key (identity.models says why)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("kind", "value"), name="unique_client_block")]
        verbose_name = "disabled client"

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class IdJagToken(models.Model):
    """An access token issued for an ID-JAG (``oauth.id_jag``): the identity provider record that
    vouched for it, so that removing that provider's trust revokes exactly these tokens
    (``oauth.receivers``). The row goes with its access token."""

    access_token = models.OneToOneField(
        "oauth2_provider.AccessToken", on_delete=models.CASCADE, related_name="platform_id_jag"
    )
    provider = models.ForeignKey("identity.IdentityProvider", on_delete=models.CASCADE, related_name="+")
    issuer = models.URLField(max_length=500)  # the provider's issuer when it vouched
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"ID-JAG token {self.pk}"
