from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, models
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.postgresql_backend.base import _check_schema_name
from django_tenants.utils import schema_exists

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

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ("schema_name",)

    @property
    def slug(self) -> str:
        return self.schema_name

    def __str__(self) -> str:
        return self.schema_name

    def create_schema(self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1) -> bool:
        """Called by ``save()`` for a new tenant: the schema is a copy of the migrated template (a spare
        copied ahead of time, ``tenants.spares``, or one made now, ``tenants.provisioning``), or,
        without a usable template, made by running every migration (django-tenants' own way).
        Migrations the template lacks are then run for real, never faked."""
        from tenants.provisioning import locked_template, missing_migrations
        from tenants.spares import claim_spare, replenish_after_commit

        _check_schema_name(self.schema_name)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        template = locked_template() if sync_schema else None
        if template is None:
            return super().create_schema(check_if_exists=False, sync_schema=sync_schema, verbosity=verbosity)
        if not claim_spare(template, self.schema_name):  # a spare copied ahead of time, else a copy now
            template.copy_into(self.schema_name)
        replenish_after_commit()
        if missing_migrations(self.schema_name):
            call_command(
                "migrate_schemas", tenant=True, schema_name=self.schema_name, interactive=False, verbosity=verbosity
            )
        connection.set_schema_to_public()
        return True


class SpareSchema(models.Model):
    """A copy of the template made ahead of time, waiting to become a tenant's schema (``tenants.spares``).
    ``fingerprint`` is the template's (``tenants.provisioning.Template.fingerprint``) when it was copied."""

    name = models.CharField(max_length=63, unique=True)
    fingerprint = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


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
