"""Upstream OAuth providers and the accounts users connected at them (tenant schema).

Secrets (the provider's client secret, the account's access and refresh tokens) are Fernet-encrypted
columns (``fernet_fields``, keys in ``settings.FERNET_KEYS``, newest first). Tokens live in their own
table, ``Credential``, so listing accounts never decrypts them; only ``connectors.tokens`` reads it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from fernet_fields import EncryptedTextField

# a provider's OAuth endpoints (``Provider`` fields)
ENDPOINT_FIELDS = ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint")


class LiveProviders(models.Manager):
    """Providers not deleted. A deleted provider is kept (invisible: lists, lookups, the admin) until the
    sweep has revoked every grant issued through it, then removed (``connectors.services``)."""

    def __init__(self, *, include_deleted: bool = False) -> None:
        super().__init__()
        self.include_deleted = include_deleted

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        return queryset if self.include_deleted else queryset.filter(deleted_at__isnull=True)


class Provider(models.Model):
    class AuthMethod(models.TextChoices):
        BASIC = "client_secret_basic", "client_secret_basic"
        POST = "client_secret_post", "client_secret_post"
        NONE = "none", "none (public client)"

    key = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=200)
    preset = models.CharField(max_length=64, blank=True, help_text="the preset it was created from, if any")
    issuer = models.URLField(max_length=500, blank=True)
    authorization_endpoint = models.URLField(max_length=500)
    token_endpoint = models.URLField(max_length=500)
    revocation_endpoint = models.URLField(max_length=500, blank=True)
    userinfo_endpoint = models.URLField(max_length=500, blank=True)
    client_id = models.CharField(max_length=500)
    client_secret = EncryptedTextField(blank=True, default="")
    default_scopes = models.JSONField(default=list, blank=True)
    scope_separator = models.CharField(max_length=4, default=" ")
    token_endpoint_auth_method = models.CharField(max_length=32, choices=AuthMethod.choices, default=AuthMethod.BASIC)
    pkce = models.BooleanField(default=True, help_text="send an S256 code challenge")
    extra_authorize_params = models.JSONField(default=dict, blank=True)
    mcp_endpoint = models.URLField(
        max_length=500, blank=True, help_text="the provider's MCP endpoint, for tools that call its tools"
    )
    api_base_url = models.URLField(
        max_length=500, blank=True, help_text="the provider's REST API base URL, for tools that call its API"
    )
    account_id_claim = models.CharField(
        max_length=64, default="sub", help_text="userinfo member holding the external account id"
    )
    # from the issuer's discovery document (or the preset): the mix-up defence (RFC 9207) and the keys
    # that sign its ID tokens; never typed by an admin
    authorization_response_iss_parameter_supported = models.BooleanField(
        default=False, help_text="the provider says it sends iss with every authorization response (RFC 9207)"
    )
    jwks_uri = models.URLField(max_length=500, blank=True, help_text="the keys that sign its ID tokens")
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LiveProviders()
    all_objects = LiveProviders(include_deleted=True)  # deleted ones too: the sweep that removes them

    class Meta:
        ordering = ("display_name", "key")

    def __str__(self) -> str:
        return f"{self.display_name} ({self.key})"


class ConnectedAccount(models.Model):
    """One user's connection to one provider. No secrets here: see ``Credential``."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        REFRESHING = "refreshing", "refreshing"
        NEEDS_REAUTH = "needs_reauth", "needs re-authorization"
        REVOKED = "revoked", "revoked"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="accounts")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=64, blank=True)
    refreshing_since = models.DateTimeField(null=True, blank=True)
    external_account_id = models.CharField(max_length=255, blank=True)
    external_account_label = models.CharField(max_length=255, blank=True)
    granted_scopes = models.JSONField(default=list, blank=True)
    requested_scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="access token expiry; empty = does not expire")
    # the access token's own life (connectors.timing): refresh timing follows it
    token_issued_at = models.DateTimeField(null=True, blank=True, help_text="when the access token was issued")
    token_lifetime_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="how long the access token lives (expires_in); empty = not said"
    )
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    revocation_pending = models.BooleanField(default=False)
    # lifecycle jobs: the proactive refresh's lease/backoff and the revocation retries
    next_refresh_at = models.DateTimeField(null=True, blank=True, help_text="not refreshed by the job before")
    refresh_failures = models.PositiveIntegerField(default=0)
    refresh_failing_since = models.DateTimeField(null=True, blank=True)
    revocation_attempts = models.PositiveIntegerField(default=0)
    next_revocation_at = models.DateTimeField(null=True, blank=True)
    # bumped by every connect and by everything that ends the credential (disconnect, the sweep, a
    # provider change); ``Credential.generation`` holds the value it was written under, and a refresh
    # stores its answer only if the credential still has the generation it read (connectors.tokens)
    credential_generation = models.PositiveBigIntegerField(default=0)
    forced_refresh_at = models.DateTimeField(null=True, blank=True, help_text="last refresh a user asked for")
    connected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("provider__display_name", "id")
        constraints = [models.UniqueConstraint(fields=("user", "provider"), name="connectors_one_account_per_provider")]

    def __str__(self) -> str:
        return f"{self.provider.key} account of user {self.user_id} ({self.status})"

    @property
    def narrower_than_requested(self) -> list[str]:
        return sorted(set(self.requested_scopes) - set(self.granted_scopes))

    @property
    def status_explanation(self) -> str:
        """What the connections page tells the user about a status reason (the reason code is shown too)."""
        return STATUS_REASONS.get(self.status_reason, "")


# why an account is not usable, as the connections page says it
STATUS_REASONS = {
    "provider_changed": (
        "An administrator changed this provider's settings (its endpoints or client). The previous "
        "connection was ended and revoked at the provider; connect again to keep using it."
    ),
    "reconnecting": "A new connection was started but not completed. Connect again.",
    "invalid_grant": "The provider no longer accepts this connection (revoked or expired there). Connect again.",
    "refresh_lost": "The connection could not be renewed after an interrupted refresh. Connect again.",
    "refresh_failing": "The provider has not been renewing this connection for hours. Connect again.",
    "expired": "The access expired and the provider gave no way to renew it. Connect again.",
    "disconnected": "You disconnected this account.",
    "admin_disconnected": "An administrator disconnected this account.",
}


class ProviderBreaker(models.Model):
    """The provider-wide breaker of this tenant for one OAuth app at a provider: its token endpoint
    and client id (``connectors.breaker``). Rate limits (429), 5xx answers and timeouts there open
    it; while open nobody in the tenant calls that token endpoint; a single probe closes it again."""

    class State(models.TextChoices):
        CLOSED = "closed", "closed"
        OPEN = "open", "open"
        HALF_OPEN = "half_open", "half-open (one probe in flight)"

    key = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token endpoint and client id")
    provider_key = models.SlugField(max_length=64, help_text="a provider using it (metrics, health page)")
    token_endpoint = models.URLField(max_length=500)
    state = models.CharField(max_length=16, choices=State.choices, default=State.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    open_streak = models.PositiveIntegerField(default=0, help_text="openings since it last closed")
    opened_at = models.DateTimeField(null=True, blank=True)
    open_until = models.DateTimeField(null=True, blank=True)
    probe_until = models.DateTimeField(null=True, blank=True)
    times_opened = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=dict, blank=True, help_text="failures by class, since created")
    last_failure_class = models.CharField(max_length=32, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"breaker of {self.provider_key} ({self.state})"


class Credential(models.Model):
    """The account's tokens, encrypted. Read and written only by ``connectors.tokens`` and services."""

    account = models.OneToOneField(ConnectedAccount, on_delete=models.CASCADE, related_name="credential")
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(null=True, blank=True)
    token_type = models.CharField(max_length=32, default="Bearer")
    generation = models.PositiveBigIntegerField(default=0, help_text="the account's credential_generation")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:  # never the tokens
        return f"credential of account {self.account_id}"

    def __repr__(self) -> str:
        return f"<Credential of account {self.account_id}>"


class AuthorizationRequest(models.Model):
    """One started connect flow: ``state`` (stored hashed) bound to the user and provider (and, by its
    schema, the tenant), usable once, for ten minutes. The PKCE verifier and the OIDC nonce stay here, server-side."""

    state_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    code_verifier = EncryptedTextField(blank=True, default="")
    nonce = models.CharField(max_length=64, blank=True)
    redirect_uri = models.URLField(max_length=500)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"authorization request {self.pk} for provider {self.provider_id}"


class RetiredGrant(models.Model):
    """Tokens no account holds any more, waiting to be revoked (RFC 7009) where they were issued: the
    previous grant of a reconnected account, the grants of a provider whose endpoints or client
    changed, tokens a refresh got for an account that was disconnected or reconnected meanwhile. The
    provider's revocation endpoint and client credentials are a snapshot taken when the grant was
    retired, so a later edit of the provider never sends them anywhere else. Deleted once revoked."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(ConnectedAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=32)
    revocation_endpoint = models.URLField(max_length=500, blank=True)
    client_id = models.CharField(max_length=500)
    client_secret = EncryptedTextField(blank=True, default="")
    token_endpoint_auth_method = models.CharField(max_length=32)
    access_token = EncryptedTextField(blank=True, default="")
    refresh_token = EncryptedTextField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:  # never the tokens
        return f"retired grant {self.pk} of provider {self.provider_id} ({self.reason})"

    def __repr__(self) -> str:
        return f"<RetiredGrant {self.pk} ({self.reason})>"
