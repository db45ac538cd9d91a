"""Reads of the connectors app. None of them touches a token. Deleted providers (kept until their
grants are revoked) and their accounts are invisible here: ``Provider.objects`` leaves them out."""

from __future__ import annotations

from django.db.models import QuerySet

from connectors.models import ConnectedAccount, Provider


def providers() -> QuerySet[Provider]:
    return Provider.objects.defer("client_secret").order_by("display_name", "key")


def provider_by_key(key: str) -> Provider | None:
    return Provider.objects.filter(key=key).first()


def accounts_of_user(user_id: int) -> QuerySet[ConnectedAccount]:
    return (
        ConnectedAccount.objects.filter(user_id=user_id, provider__deleted_at__isnull=True)
        .select_related("provider")
        .defer("provider__client_secret")
    )


def account_of_user(user_id: int, provider_key: str) -> ConnectedAccount | None:
    return accounts_of_user(user_id).filter(provider__key=provider_key).first()


def connections_overview(user_id: int) -> list[tuple[Provider, ConnectedAccount | None]]:
    """Every provider of the tenant with the user's account there, if any."""
    accounts = {a.provider_id: a for a in accounts_of_user(user_id)}
    return [(p, accounts.get(p.pk)) for p in providers()]


def all_accounts() -> QuerySet[ConnectedAccount]:
    """Every member's accounts in this tenant (admins)."""
    return (
        ConnectedAccount.objects.filter(provider__deleted_at__isnull=True)
        .select_related("provider", "user")
        .defer("provider__client_secret")
        .order_by("provider__key", "user__email")
    )
