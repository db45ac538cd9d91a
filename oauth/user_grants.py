"""What one user has granted to which clients in the current tenant, and taking it back: the read and
the write behind the member's account page ("AI clients with access").

A client holds access for a user while it has a live token of theirs (an unexpired access token or
an unrevoked refresh token) or a remembered consent (which lets it through the consent page without
asking). Revoking ends all of it at once: every token family of that user for that client, pending
codes, and the consent, so the next authorization asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from oauth.models import ConsentGrant
from observability import audit


@dataclass
class ClientAccess:
    application_id: int
    client_id: str
    name: str
    registration: str  # "DCR", "CIMD" or "registered by an admin"
    domains: list[str]  # the CIMD document's host, or the redirect URIs' hosts
    software_id: str
    scopes: set[str] = field(default_factory=set)
    first_authorized: datetime | None = None
    last_used: datetime | None = None  # the latest token issued to it for this user


_REGISTRATION = {
    Application.RegistrationSource.DCR: "DCR",
    Application.RegistrationSource.CIMD: "CIMD",
}


def _domains(application: Application) -> list[str]:
    if application.registration_source == Application.RegistrationSource.CIMD:
        return [urlsplit(application.client_id).hostname or ""]
    hosts = {urlsplit(uri).hostname or "" for uri in application.redirect_uris.split()}
    return sorted(h for h in hosts if h)


def clients_with_access(user_id: int) -> list[ClientAccess]:
    """Every client holding access for ``user_id`` (module docstring), most recently used first."""
    now = timezone.now()
    live_access = AccessToken.objects.filter(user_id=user_id, expires__gt=now)
    live_refresh = RefreshToken.objects.filter(user_id=user_id, revoked__isnull=True)
    consents = ConsentGrant.objects.filter(user_id=user_id)
    ids = (
        set(live_access.values_list("application_id", flat=True))
        | set(live_refresh.values_list("application_id", flat=True))
        | set(consents.values_list("application_id", flat=True))
    )
    if not ids:
        return []
    found: dict[int, ClientAccess] = {}
    for application in Application.objects.filter(pk__in=ids).select_related("profile"):
        profile = getattr(application, "profile", None)
        found[application.pk] = ClientAccess(
            application_id=application.pk,
            client_id=application.client_id,
            name=application.name or "An unnamed client",
            registration=_REGISTRATION.get(application.registration_source, "registered by an admin"),
            domains=_domains(application),
            software_id=profile.software_id if profile else "",
        )
    for application_id, scope in live_access.values_list("application_id", "scope"):
        found[application_id].scopes.update(scope.split())
    for consent in consents:
        found[consent.application_id].scopes.update(consent.scopes)
    issued = (
        RefreshToken.objects.filter(user_id=user_id, application_id__in=ids)
        .values("application_id")
        .annotate(first=Min("created"), last=Max("updated"))
    )
    for row in issued:
        found[row["application_id"]].first_authorized = row["first"]
        found[row["application_id"]].last_used = row["last"]
    for row in live_access.values("application_id").annotate(last=Max("created")):
        access = found[row["application_id"]]
        access.last_used = max(filter(None, (access.last_used, row["last"])))
        access.first_authorized = access.first_authorized or row["last"]
    return sorted(found.values(), key=lambda a: a.last_used or now, reverse=True)


def revoke_client_access(*, user_id: int, application_id: int) -> int:
    """Take back everything ``application_id`` holds for ``user_id`` (module docstring). Returns how
    many access tokens died."""
    now = timezone.now()
    with transaction.atomic():
        ConsentGrant.objects.filter(user_id=user_id, application_id=application_id).delete()
        owner = Q(user_id=user_id, application_id=application_id)
        RefreshToken.objects.filter(owner, revoked__isnull=True).update(revoked=now, updated=now, access_token=None)
        deleted, _ = AccessToken.objects.filter(owner).delete()
        Grant.objects.filter(owner).delete()
    client_id = Application.objects.filter(pk=application_id).values_list("client_id", flat=True).first()
    audit.record(event="revocation", outcome="revoked_by_user", user_id=user_id, client_id=client_id)
    return deleted
