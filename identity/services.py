"""Writes of the identity app in the current tenant's schema: identity providers, the SSO policy,
the register of sign-in sessions. Keyword arguments only; each call commits all of its rows or none.
Sign-in itself is ``identity.sign_in``, back-channel logout ``identity.logout``, SCIM ``identity.scim``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest

from identity import discovery
from identity.errors import IdentityError
from identity.models import IdentityProvider, SignInSession, SsoPolicy
from observability import audit
from tenants.http import client_address

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
NOT_GIVEN: Any = object()  # an option the caller did not pass: the stored value stays


@dataclass(frozen=True)
class Outcome:
    changed: bool
    detail: str


def _domains(values: Iterable[str]) -> list[str]:
    domains = sorted({value.strip().lower().lstrip("@") for value in values if value.strip()})
    bad = [d for d in domains if not DOMAIN_RE.match(d)]
    if bad:
        raise IdentityError("invalid_domain", f"{bad[0]!r} is not a domain name")
    return domains


def add_provider(
    *,
    key: str,
    issuer: str,
    client_id: str = NOT_GIVEN,
    client_secret: str = NOT_GIVEN,
    name: str = NOT_GIVEN,
    email_domains: Iterable[str] = NOT_GIVEN,
    jit_role: str = NOT_GIVEN,
    role_claim: str = NOT_GIVEN,
    admin_value: str = NOT_GIVEN,
    organization: tuple[str, str] = NOT_GIVEN,
    link_by_email: bool = NOT_GIVEN,
    accept_id_jag: bool = NOT_GIVEN,
) -> tuple[IdentityProvider, Outcome]:
    """Create or update the identity provider ``key`` from its issuer's discovery document; the same
    facts again change nothing. ``email_domains`` and ``link_by_email`` are the platform operator's
    (the CLI): the tenant admin's form does not offer them."""
    if not KEY_RE.match(key):
        raise IdentityError("invalid_key", "a key is 1-64 lowercase letters, digits, '-' or '_'")
    issuer = issuer.strip()
    metadata = discovery.discover(issuer)
    given: dict[str, Any] = {
        "issuer": issuer,
        "metadata": metadata,
        "client_id": client_id,
        "client_secret": client_secret,
        "name": name,
        "jit_role": jit_role,
        "role_claim": role_claim,
        "admin_value": admin_value,
        "link_by_email": link_by_email,
        "accept_id_jag": accept_id_jag,
    }
    if email_domains is not NOT_GIVEN:
        given["email_domains"] = _domains(email_domains)
    if organization is not NOT_GIVEN:
        given["organization_claim"], given["organization_value"] = organization
    fields = {name: value for name, value in given.items() if value is not NOT_GIVEN}
    if fields.get("jit_role", IdentityProvider.JitRole.NONE) not in IdentityProvider.JitRole.values:
        raise IdentityError("invalid_role", f"--jit-role must be one of {', '.join(IdentityProvider.JitRole.values)}")
    with transaction.atomic():
        provider = IdentityProvider.objects.select_for_update().filter(key=key).first()
        effective = {name: fields.get(name, getattr(provider, name, "")) for name in ("role_claim", "admin_value")}
        if effective["role_claim"] and not effective["admin_value"]:
            raise IdentityError("admin_value_required", "--role-claim needs --admin-value (the value meaning admin)")
        if provider is None:
            if not fields.get("client_id"):
                raise IdentityError("client_id_required", "a new identity provider needs --client-id")
            fields.setdefault("name", key)
            provider = IdentityProvider.objects.create(key=key, **fields)
            return provider, Outcome(True, f"identity provider {key!r} added ({issuer})")
        changed = [name for name, value in fields.items() if getattr(provider, name) != value]
        if not changed:
            return provider, Outcome(False, f"identity provider {key!r} is already as asked")
        for name in changed:
            setattr(provider, name, fields[name])
        provider.save()
        shown = ", ".join(sorted(n if n != "client_secret" else "client secret" for n in changed))
        return provider, Outcome(True, f"identity provider {key!r} updated: {shown}")


def set_sso_required(*, required: bool) -> Outcome:
    with transaction.atomic():
        policy = SsoPolicy.objects.select_for_update().order_by("pk").first() or SsoPolicy()
        if policy.pk is not None and policy.sso_required == required:
            return Outcome(False, f"SSO is already {'required' if required else 'optional'}")
        policy.sso_required = required
        policy.save()
    audit.record(event="sso_policy", outcome="required" if required else "optional")
    return Outcome(True, f"SSO is now {'required' if required else 'optional'}")


def record_sign_in(
    *, request: HttpRequest, user_id: int, provider: IdentityProvider | None = None, sid: str = ""
) -> None:
    """Register the session a sign-in just created (``user_logged_in``)."""
    session_key = request.session.session_key
    if not session_key:
        return
    SignInSession.objects.update_or_create(
        session_key=session_key,
        defaults={
            "user_id": user_id,
            "method": SignInSession.Method.SSO if provider else SignInSession.Method.PASSWORD,
            "provider": provider,
            "sid": sid[:255],
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200],
            "source_address": client_address(request),
        },
    )


def forget_session(*, session_key: str | None) -> None:
    if session_key:
        SignInSession.objects.filter(session_key=session_key).delete()


def end_sessions(*, sessions: Iterable[SignInSession]) -> int:
    """End these sign-in sessions now: their session rows and their register rows are deleted, so the
    next request of each browser is signed out. Returns how many there were."""
    keys = [s.session_key for s in sessions]
    if not keys:
        return 0
    with transaction.atomic():
        Session.objects.filter(session_key__in=keys).delete()
        SignInSession.objects.filter(session_key__in=keys).delete()
    return len(keys)
