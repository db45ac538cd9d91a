"""Who a validated ID token signs in, in the current tenant (the rules of docs/architecture.md,
"Enterprise identity").

- A user is found by the link (provider, ``sub``, organisation) that an earlier sign-in through this
  tenant's provider recorded. Links are per provider record of this tenant: a sign-in through another
  tenant's provider, even one with the same issuer, links nothing here.
- Without a link, by email only when the provider allows it (``link_by_email``, the operator's), the
  email is verified and its domain is listed; the user must already be an active member here.
- Otherwise a first sign-in creates a user and a membership (``jit_role``) only when the domain is
  listed and the email verified, and never takes over an existing platform user.
- Where the provider names a role claim, the role follows it on every sign-in, both ways.
- An ended membership is not brought back by a sign-in (SCIM, the CLI or the platform admin do that).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from identity.errors import IdentityError
from identity.models import IdentityLink, IdentityProvider
from tenants.errors import TenantServiceError
from tenants.models import Membership, Tenant
from tenants.selectors import active_membership
from tenants.services import add_user

User = get_user_model()


def _email(claims: Mapping[str, Any]) -> tuple[str, bool]:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return "", False
    verified = claims.get("email_verified")
    return email.strip().lower(), verified is True or verified == "true"


def claimed_role(provider: IdentityProvider, claims: Mapping[str, Any], *, when_present: bool = False) -> str | None:
    """admin/member from the provider's role claim (a string or a list of strings); None when the
    provider names no role claim, or, with ``when_present``, when the claims do not carry it (an
    ID-JAG usually carries no groups: its absence must not demote an admin)."""
    if not provider.role_claim or (when_present and provider.role_claim not in claims):
        return None
    value = claims.get(provider.role_claim)
    values = value if isinstance(value, list) else [value]
    return Membership.Role.ADMIN if provider.admin_value in values else Membership.Role.MEMBER


def organization_of(provider: IdentityProvider, claims: Mapping[str, Any]) -> str:
    """The organisation claim's value, checked against the provider record (Entra ``tid``, Google
    ``hd``): one issuer serving many organisations admits only this tenant's."""
    if not provider.organization_claim:
        return ""
    value = claims.get(provider.organization_claim)
    if value != provider.organization_value:
        raise IdentityError("wrong_organization", "this account belongs to another organisation at the provider")
    return value


def _membership_role(user: User, tenant: Tenant, role: str | None) -> Membership:
    membership = active_membership(user.pk, tenant.pk)
    if membership is None:
        raise IdentityError("not_a_member", "this account is not a member here")
    if role is not None and membership.role != role:
        membership, _ = add_user(slug=tenant.schema_name, email=user.email, password=None, role=role)
    return membership


def resolve_member(
    *, tenant: Tenant, provider: IdentityProvider, claims: Mapping[str, Any], role_when_present: bool = False
) -> tuple[User, str]:
    """The member these claims sign in (creating user and membership when the provider's JIT rule
    allows), with the way they were found: "link", "email" or "jit". Raises ``IdentityError``.
    ``role_when_present``: the role follows the role claim only when the claims carry it (ID-JAGs,
    ``oauth.id_jag``); an ID token without it means "not an admin"."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise IdentityError("invalid_subject", "the token has no usable sub")
    organization = organization_of(provider, claims)
    email, verified = _email(claims)
    listed = bool(email) and email.rsplit("@", 1)[1] in provider.email_domains
    role = claimed_role(provider, claims, when_present=role_when_present)
    with transaction.atomic():
        _serialize_first_sign_in(provider, subject, organization)
        link = (
            IdentityLink.objects.select_for_update()
            .filter(provider=provider, subject=subject, organization=organization)
            .first()
        )
        how = "link"
        if link is not None:
            user = User.objects.filter(pk=link.user_id, is_active=True).first()
            if user is None:
                raise IdentityError("inactive_account", "this account is disabled")
        elif provider.link_by_email and verified and listed and User.objects.filter(email=email).exists():
            user = User.objects.get(email=email)
            if not user.is_active or active_membership(user.pk, tenant.pk) is None:
                raise IdentityError("not_a_member", "this account is not a member here")
            how = "email"
        else:
            user = _just_in_time(
                tenant=tenant,
                provider=provider,
                email=email,
                verified=verified,
                listed=listed,
                role=role,
                name=claims.get("name"),
            )
            how = "jit"
        _membership_role(user, tenant, role)
        if link is None:
            link = IdentityLink.objects.create(provider=provider, subject=subject, organization=organization, user=user)
        link.last_sign_in_at = timezone.now()
        link.save(update_fields=["last_sign_in_at"])
    return user, how


def _serialize_first_sign_in(provider: IdentityProvider, subject: str, organization: str) -> None:
    """Until this transaction ends, other sign-ins of the same (provider, sub, organisation) wait here:
    a row lock cannot guard a link that does not exist yet, and a client's parallel first requests
    (ID-JAG presentations, two SSO tabs) would each create the user, the loser finding it taken."""
    key = f"identity-link:{connection.schema_name}:{provider.pk}:{organization}:{subject}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _just_in_time(
    *, tenant: Tenant, provider: IdentityProvider, email: str, verified: bool, listed: bool, role: str | None, name: Any
) -> User:
    if provider.jit_role == IdentityProvider.JitRole.NONE:
        raise IdentityError("no_account", "this account has not been provisioned here")
    if not (email and verified and listed):
        raise IdentityError("domain_not_allowed", "accounts of this email domain are not provisioned at sign-in")
    if User.objects.filter(email=email).exists():
        # a platform user who is not linked here: a sign-in never takes an existing account over
        raise IdentityError("account_exists", "this email belongs to an existing account that is not linked here")
    user = User.objects.create_user(email=email, password=None, full_name=name[:200] if isinstance(name, str) else "")
    try:
        add_user(slug=tenant.schema_name, email=email, password=None, role=role or provider.jit_role)
    except TenantServiceError as exc:
        raise IdentityError(exc.code, str(exc)) from exc
    return user
