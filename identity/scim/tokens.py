"""The tenant's SCIM bearer token: issued by ``tenant_scim_token`` (printed once), stored as its
SHA-256. Issuing again rotates it: the previous token keeps working for
``IDENTITY_SCIM_TOKEN_GRACE_SECONDS`` (24 hours) so the IdP's configuration can be updated."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from identity.models import ScimToken

PREFIX = "scim_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token() -> tuple[str, int]:
    """A new token (returned once, never stored in clear) and how many earlier ones were retired."""
    token = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        retired = ScimToken.objects.filter(retired_at__isnull=True).update(retired_at=now)
        ScimToken.objects.filter(retired_at__lt=now - _grace()).delete()  # past their grace: gone
        ScimToken.objects.create(token_hash=_hash(token))
    return token, retired


def _grace() -> timedelta:
    return timedelta(seconds=settings.IDENTITY_SCIM_TOKEN_GRACE_SECONDS)


def token_is_valid(token: str) -> bool:
    if not token or len(token) > 512:
        return False
    live = Q(retired_at__isnull=True) | Q(retired_at__gt=timezone.now() - _grace())
    return ScimToken.objects.filter(live, token_hash=_hash(token)).exists()
