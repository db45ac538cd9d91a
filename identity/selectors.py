"""Reads of the identity app (current tenant's schema). None returns a secret."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from identity.models import IdentityProvider, SignInSession, SsoPolicy


def enabled_providers() -> QuerySet[IdentityProvider]:
    """The providers offered on the login page ("Sign in with NAME")."""
    return IdentityProvider.objects.filter(is_enabled=True).defer("client_secret").order_by("name", "key")


def provider_by_key(key: str) -> IdentityProvider | None:
    return IdentityProvider.objects.filter(key=key, is_enabled=True).first()


def providers_of_issuer(issuer: str) -> list[IdentityProvider]:
    """The tenant's enabled provider records of ``issuer`` (more than one when the tenant registered
    several clients at one identity provider)."""
    return list(IdentityProvider.objects.filter(issuer=issuer, is_enabled=True).order_by("pk"))


def id_jag_providers(issuer: str) -> list[IdentityProvider]:
    """The tenant's enabled provider records of ``issuer`` that accept ID-JAGs (enterprise-managed
    authorization), oldest first. Another tenant's providers are in another schema: never found here."""
    return list(IdentityProvider.objects.filter(issuer=issuer, is_enabled=True, accept_id_jag=True).order_by("pk"))


def trusts_id_jags() -> bool:
    """Whether the tenant accepts ID-JAGs from at least one of its identity providers."""
    return IdentityProvider.objects.filter(is_enabled=True, accept_id_jag=True).exists()


def sso_required() -> bool:
    return SsoPolicy.objects.filter(sso_required=True).exists()


def live_sessions_of(user_id: int) -> QuerySet[SignInSession]:
    """The user's sign-in sessions in this tenant whose session has not expired or ended."""
    alive = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=timezone.now())
    return (
        SignInSession.objects.filter(user_id=user_id)
        .filter(Exists(alive))
        .select_related("provider")
        .order_by("-created_at")
    )
