"""Upstream OAuth providers and the accounts users connected at them (tenant schema).

Secrets (the provider's client secret, the account's access and refresh tokens) are Fernet-encrypted
columns (``fernet_fields``, keys in ``settings.FERNET_KEYS``, newest first). Tokens live in their own
table, ``Credential``, so listing accounts never decrypts them; only ``connectors.tokens`` reads it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from fernet_fields import EncryptedTextField


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    revocation_pending = models.BooleanField(default=False)
    # lifecycle jobs (issue 11): the proactive refresh's lease/backoff and the revocation retries
    next_refresh_at = models.DateTimeField(null=True, blank=True, help_text="not refreshed by the job before")
    refresh_failures = models.PositiveIntegerField(default=0)
    refresh_failing_since = models.DateTimeField(null=True, blank=True)
    revocation_attempts = models.PositiveIntegerField(default=0)
    next_revocation_at = models.DateTimeField(null=True, blank=True)
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


class Credential(models.Model):
    """The account's tokens, encrypted. Read and written only by ``connectors.tokens`` and services."""

    account = models.OneToOneField(ConnectedAccount, on_delete=models.CASCADE, related_name="credential")
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(null=True, blank=True)
    token_type = models.CharField(max_length=32, default="Bearer")
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
