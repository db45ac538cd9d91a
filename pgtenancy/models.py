from __future__ import annotations

from django.db import models


class SpareSchema(models.Model):
    """A copy of the template made ahead of time, waiting to become a tenant's schema (``pgtenancy.spares``).
    ``fingerprint`` is the template's (``pgtenancy.provisioning.Template.fingerprint``) when it was copied."""

    name = models.CharField(max_length=63, unique=True)
    fingerprint = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "tenants_spareschema"  # made by the tenants app before the model moved here

    def __str__(self) -> str:
        return self.name
