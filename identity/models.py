"""Enterprise identity of one tenant, in the tenant's own schema (docs/architecture.md, "Enterprise
identity"): the identity providers it trusts, the (issuer, ``sub``) links they vouched for, the SCIM
token and resources, the SSO policy and the register of sign-in sessions.

Users are platform-wide (``public.accounts_user``). The columns that point at a user here are
``ForeignKey(..., db_constraint=False, on_delete=DO_NOTHING)``: no database-level foreign key from a
tenant schema to the shared user table (every such key adds triggers to that one table in every
tenant, and a distributed PostgreSQL cannot keep them across nodes). Integrity is the services'
job: they only write ids of users they just read, and users are never deleted (deactivation ends
memberships).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from fernet_fields import EncryptedTextField


def _user_reference(**options):
    """A pointer at a platform user without a database-level foreign key (module docstring)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", **options
    )


class IdentityProvider(models.Model):
    """An OpenID provider of the tenant (Okta, Entra ID, Google Workspace, Keycloak...): the platform
    is its relying party. Endpoints come from its discovery document, kept in ``metadata``."""

    class JitRole(models.TextChoices):
        NONE = "none", "none (no new memberships at sign-in)"
        MEMBER = "member", "member"
        ADMIN = "admin", "admin"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200, help_text='shown on the login page: "Sign in with NAME"')
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=500)
    client_secret = EncryptedTextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True, help_text="the issuer's discovery document")
    # set by the platform operator only (CLI or platform admin): a tenant admin must not claim a domain
    email_domains = models.JSONField(default=list, blank=True)
    link_by_email = models.BooleanField(default=False)
    jit_role = models.CharField(max_length=16, choices=JitRole.choices, default=JitRole.NONE)
    role_claim = models.CharField(max_length=100, blank=True, help_text="ID token claim that carries the role")
    admin_value = models.CharField(max_length=200, blank=True, help_text="value of the role claim meaning admin")
    organization_claim = models.CharField(
        max_length=64, blank=True, help_text="claim naming the organisation where one issuer serves many (tid, hd)"
    )
    organization_value = models.CharField(max_length=200, blank=True)
    accept_id_jag = models.BooleanField(default=False, help_text="trust ID-JAGs signed by this issuer")
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "key")
        verbose_name = "identity provider"

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class IdentityLink(models.Model):
    """A platform user as known to one of the tenant's identity providers: its ``sub`` (and the
    organisation claim's value, where the provider names one)."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="links")
    subject = models.CharField(max_length=255)
    organization = models.CharField(max_length=200, blank=True, default="")
    user = _user_reference()
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("provider", "subject", "organization"), name="unique_identity_link")
        ]

    def __str__(self) -> str:
        return f"link {self.pk} of user {self.user_id}"


class SsoPolicy(models.Model):
    """The tenant's sign-in policy: at most one row (``identity.selectors.sso_required``)."""

    sso_required = models.BooleanField(
        default=False, help_text="members sign in through an identity provider; admins keep a password (audited)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SSO {'required' if self.sso_required else 'optional'}"


class SignInSession(models.Model):
    """A login session of this tenant (the session row is in the same schema), recorded at sign-in
    so that a user's sessions can be listed and ended: back-channel logout, the account page."""

    class Method(models.TextChoices):
        PASSWORD = "password", "password"
        SSO = "sso", "identity provider"

    session_key = models.CharField(max_length=40, unique=True)
    user = _user_reference(db_index=True)
    method = models.CharField(max_length=16, choices=Method.choices)
    provider = models.ForeignKey(IdentityProvider, on_delete=models.SET_NULL, null=True, blank=True)
    sid = models.CharField(max_length=255, blank=True, db_index=True, help_text="the provider's session id")
    created_at = models.DateTimeField(auto_now_add=True)
    user_agent = models.CharField(max_length=200, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"session {self.pk} of user {self.user_id}"


class LogoutTokenUse(models.Model):
    """A back-channel logout token's ``jti``, accepted once (OpenID Back-Channel Logout 1.0 §2.6)."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("provider", "jti"), name="unique_logout_jti")]

    def __str__(self) -> str:
        return f"logout token use {self.pk}"


class ScimToken(models.Model):
    """The bearer token the tenant's identity provider presents at its SCIM endpoint, stored as its
    SHA-256. Rotating retires the previous one, which keeps working for a grace period."""

    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:  # never the hash
        return f"SCIM token {self.pk}"


class ScimUser(models.Model):
    """This tenant's SCIM resource for one platform user: the membership as the identity provider
    sees it. ``id`` is the SCIM id, issued here, meaningful in this tenant only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = _user_reference(unique=True)
    external_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SCIM user"

    def __str__(self) -> str:
        return f"SCIM user {self.pk}"
