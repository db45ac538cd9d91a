from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

# A slug is the tenant's URL segment and its PostgreSQL schema name, so it must be a valid *unquoted*
# identifier: lowercase letter first, then lowercase letters, digits or '_', 63 bytes at most, and not
# a name PostgreSQL reserves (pg_*) or one the platform uses.
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_SLUGS = frozenset({"public", "information_schema", "admin", "static", "t"})


def validate_slug(value: str) -> None:
    if not SLUG_RE.match(value) or value.startswith("pg_") or value in RESERVED_SLUGS:
        raise ValidationError(
            f"invalid tenant slug {value!r}: use 1-63 characters, a lowercase letter first, then lowercase "
            "letters, digits or '_'; not 'pg_…' and not one of " + ", ".join(sorted(RESERVED_SLUGS)),
            code="invalid_slug",
        )


class Tenant(TenantMixin):
    """A tenant; its slug is also its schema name (``schema_name``)."""

    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    access_token_lifetime_seconds = models.PositiveIntegerField(
        default=900, help_text="Lifetime of OAuth access tokens issued by this tenant."
    )

    # the schema is made by tenants.services.create_tenant (pgtenancy.schemas.create_schema), not by save()
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ("schema_name",)

    @property
    def slug(self) -> str:
        return self.schema_name

    def __str__(self) -> str:
        return self.schema_name


class Domain(DomainMixin):
    """An optional own host name for a tenant (the path prefix ``/t/<slug>/`` always works)."""


class MembershipQuerySet(models.QuerySet):
    def active(self) -> MembershipQuerySet:
        """The "active member" rule, the one place it is written in Python: the membership is active,
        and so are its user and its tenant. ``mcp_tools.statements.active_role_sql`` mirrors it in SQL (the
        ``role`` subquery); change both together."""
        return self.filter(is_active=True, user__is_active=True, tenant__is_active=True)


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        ADMIN = "admin", "Admin"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=("user", "tenant"), name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role}{'' if self.is_active else ', ended'})"

    @property
    def is_admin(self) -> bool:
        return self.is_active and self.role == self.Role.ADMIN
