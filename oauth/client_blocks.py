"""The tenant's kill switch for a client (``ClientBlock``): a tenant admin disables a client by client
id, by CIMD host (every client id on it), or, for dynamically registered clients, by ``software_id``
or redirect URI host. Disabling revokes every token, pending code and consent of every matching
client at once; from then on:

- the authorization endpoint refuses it (``validate_client_id``), so it cannot authorize again;
- it cannot refresh: its refresh tokens are revoked, and no new ones can be issued without an
  authorization; other grant types are refused at the token endpoint (``validate_grant_type``);
- registering again (DCR, an RFC 7592 update) with a blocked ``software_id`` or redirect host, and a
  CIMD document of a blocked client id or host, are refused (``oauth.views.registration``,
  ``oauth.cimd``);
- ``oauth.revoke_departed`` (every 5 minutes) revokes whatever a matching client still holds, e.g.
  a code issued in the instant before the block was committed.
Every change is audited (``client_disabled`` / ``client_enabled``).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from oauth.models import ClientBlock, ClientProfile, ConsentGrant
from observability import audit


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _matches(block: ClientBlock, *, client_id: str, cimd: bool, software_id: str, redirect_uris: Iterable[str]) -> bool:
    value = block.value.strip()
    if block.kind == ClientBlock.Kind.CLIENT_ID:
        return client_id == value
    if block.kind == ClientBlock.Kind.CIMD_HOST:
        return cimd and _host(client_id) == value.lower()
    if block.kind == ClientBlock.Kind.SOFTWARE_ID:
        return bool(software_id) and software_id == value
    return value.lower() in {_host(uri) for uri in redirect_uris}


def refusing_block(
    *, client_id: str, cimd: bool, software_id: str = "", redirect_uris: Iterable[str] = ()
) -> ClientBlock | None:
    """The block that refuses a client with these facts, if any (one query: blocks are few). Blocks
    are a tenant's: outside a tenant schema there are none."""
    if connection.schema_name == get_public_schema_name():
        return None
    uris = list(redirect_uris)
    for block in ClientBlock.objects.all():
        if _matches(block, client_id=client_id, cimd=cimd, software_id=software_id, redirect_uris=uris):
            return block
    return None


def _facts(application: Application, software_id: str | None = None) -> dict:
    if software_id is None:
        software_id = (
            ClientProfile.objects.filter(application=application).values_list("software_id", flat=True).first()
        )
    return {
        "client_id": application.client_id,
        "cimd": application.registration_source == Application.RegistrationSource.CIMD,
        "software_id": software_id or "",
        "redirect_uris": application.redirect_uris.split(),
    }


def is_blocked(application: Application | None) -> bool:
    if application is None or connection.schema_name == get_public_schema_name() or not ClientBlock.objects.exists():
        return False
    return refusing_block(**_facts(application)) is not None


def blocked_applications(blocks: Iterable[ClientBlock] | None = None) -> list[int]:
    """The ids of the applications that ``blocks`` (default: every block of the tenant) match."""
    blocks = list(ClientBlock.objects.all() if blocks is None else blocks)
    if not blocks:
        return []
    software = dict(ClientProfile.objects.values_list("application_id", "software_id"))
    return [
        application.pk
        for application in Application.objects.only("pk", "client_id", "registration_source", "redirect_uris")
        if any(_matches(block, **_facts(application, software.get(application.pk, ""))) for block in blocks)
    ]


def revoke_applications(application_ids: list[int]) -> int:
    """Every token, pending code and remembered consent of these clients, gone. Returns how many
    access tokens died."""
    if not application_ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        RefreshToken.objects.filter(application_id__in=application_ids, revoked__isnull=True).update(
            revoked=now, updated=now, access_token=None
        )
        deleted, _ = AccessToken.objects.filter(application_id__in=application_ids).delete()
        Grant.objects.filter(application_id__in=application_ids).delete()
        ConsentGrant.objects.filter(application_id__in=application_ids).delete()
    return deleted


def disable_client(*, kind: str, value: str, by_user_id: int | None, reason: str = "") -> tuple[ClientBlock, int]:
    """Block the clients ``kind``/``value`` names and revoke what they hold; idempotent. Returns the
    block and how many access tokens were revoked."""
    value = value.strip()
    if kind not in ClientBlock.Kind.values or not value:
        raise ValueError("a block needs a kind and a value")
    if kind in (ClientBlock.Kind.CIMD_HOST, ClientBlock.Kind.REDIRECT_HOST):
        value = value.lower()
    with transaction.atomic():
        block, _ = ClientBlock.objects.get_or_create(
            kind=kind, value=value, defaults={"reason": reason[:200], "created_by_id": by_user_id}
        )
    revoked = revoke_applications(blocked_applications([block]))
    audit.record(event="client_disabled", outcome=kind, user_id=by_user_id, client_id=value[:255])
    return block, revoked


def enable_client(*, block: ClientBlock, by_user_id: int | None) -> None:
    """Lift a block: matching clients may authorize again (nothing revoked comes back)."""
    ClientBlock.objects.filter(pk=block.pk).delete()
    audit.record(event="client_enabled", outcome=block.kind, user_id=by_user_id, client_id=block.value[:255])


def revoke_blocked() -> int:
    """The sweep's part: revoke what blocked clients still hold (normally nothing)."""
    return revoke_applications(blocked_applications())
