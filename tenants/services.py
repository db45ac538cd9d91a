"""Writes on tenants, domains and memberships. Views, admin and commands call these, nothing else;
every service takes keyword arguments only and commits all of its rows or none. Reads are in
``tenants.selectors``."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from pgtenancy.schemas import create_schema
from tenants.errors import TenantServiceError
from tenants.models import Domain, Membership, Tenant, validate_slug
from tenants.selectors import get_tenant
from tenants.signals import membership_ended, tenant_deactivated

User = get_user_model()


@dataclass(frozen=True)
class Outcome:
    """What a service did: ``changed`` is False when the call found everything already as asked."""

    changed: bool
    detail: str


@transaction.atomic
def create_tenant(*, slug: str, name: str, domain: str | None = None) -> tuple[Tenant, Outcome]:
    """Create the tenant, its schema (a copy of the migrated template, ``pgtenancy.schemas``, holding
    what migrations and post_migrate receivers put there) and its domain in one transaction;
    idempotent when called again with the same facts, also when two callers race on one slug."""
    try:
        validate_slug(slug)
    except ValidationError as exc:
        raise TenantServiceError("invalid_slug", exc.messages[0]) from exc
    existing = Tenant.objects.filter(schema_name=slug).first()
    if existing is not None:
        if existing.name != name:
            raise TenantServiceError("duplicate", f"tenant {slug!r} already exists with the name {existing.name!r}")
        if domain:
            _ensure_domain(existing, domain)
        return existing, Outcome(False, f"tenant {slug!r} already exists")
    if domain and Domain.objects.filter(domain=domain).exists():
        raise TenantServiceError("duplicate_domain", f"domain {domain!r} already belongs to another tenant")
    tenant = Tenant(schema_name=slug, name=name)
    try:
        with transaction.atomic(), schema_context(get_public_schema_name()):  # tenants are saved from public
            tenant.save()
            create_schema(tenant.schema_name)
    except IntegrityError:
        if not Tenant.objects.filter(schema_name=slug).exists():
            raise
        # the same slug created at the same moment by another caller (committed): answer as for an existing one
        return create_tenant(slug=slug, name=name, domain=domain)
    if domain:
        _ensure_domain(tenant, domain)
    return tenant, Outcome(True, f"tenant {slug!r} created")


def _ensure_domain(tenant: Tenant, host: str) -> Domain:
    host = host.strip().lower()
    taken = Domain.objects.filter(domain=host).exclude(tenant=tenant).first()
    if taken is not None:
        raise TenantServiceError("duplicate_domain", f"domain {host!r} already belongs to another tenant")
    domain, _ = Domain.objects.get_or_create(
        tenant=tenant, domain=host, defaults={"is_primary": not tenant.domains.exists()}
    )
    return domain


@transaction.atomic
def add_user(*, slug: str, email: str, password: str | None, role: str) -> tuple[Membership, Outcome]:
    """Create the user if missing and give them an active membership with ``role``."""
    tenant = get_tenant(slug)
    if role not in Membership.Role.values:
        raise TenantServiceError("invalid_role", f"role must be one of {', '.join(Membership.Role.values)}")
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise TenantServiceError("invalid_email", f"{email!r} is not an email address") from exc
    user = User.objects.filter(email=email).first()
    created_user = user is None
    if created_user:
        if not password:
            raise TenantServiceError("password_required", "a new user needs --password")
        user = User.objects.create_user(email=email, password=password)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    membership, created = Membership.objects.select_for_update().get_or_create(
        user=user, tenant=tenant, defaults={"role": role}
    )
    if not created and (not membership.is_active or membership.role != role):
        membership.is_active = True
        membership.ended_at = None
        membership.role = role
        membership.save(update_fields=["is_active", "ended_at", "role", "updated_at"])
        return membership, Outcome(True, f"{email} is again a {role} of {slug}")
    if created:
        return membership, Outcome(True, f"{email} added to {slug} as {role}")
    return membership, Outcome(False, f"{email} is already a {role} of {slug}")


@transaction.atomic
def remove_user(*, slug: str, email: str) -> tuple[Membership, Outcome]:
    """End the membership; receivers of ``membership_ended`` revoke what the user held in the tenant."""
    tenant = get_tenant(slug)
    email = email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        raise TenantServiceError("unknown_user", f"no user {email!r}")
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    if membership is None:
        raise TenantServiceError("not_a_member", f"{email} is not a member of {slug}")
    if not end_membership(membership=membership):
        return membership, Outcome(False, f"{email}'s membership of {slug} had already ended")
    return membership, Outcome(True, f"{email}'s membership of {slug} ended")


def end_membership(*, membership: Membership) -> bool:
    """End an active membership (CLI, platform admin); False if it had already ended."""
    with transaction.atomic():
        locked = Membership.objects.select_for_update().select_related("tenant", "user").get(pk=membership.pk)
        if not locked.is_active:
            return False
        locked.is_active = False
        locked.ended_at = timezone.now()
        locked.save(update_fields=["is_active", "ended_at", "updated_at"])
        transaction.on_commit(
            lambda: membership_ended.send(sender=Membership, tenant=locked.tenant, user=locked.user, membership=locked)
        )
    membership.is_active, membership.ended_at = False, locked.ended_at
    return True


def deactivate_user(*, user: User) -> int:
    """Deactivate a platform user (platform admin): no more sign-ins anywhere, and every active
    membership ended through ``end_membership``, so each tenant's receivers revoke the user's tokens
    there once this commits. Returns the number of memberships ended."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.is_active:
            locked.is_active = False
            locked.save(update_fields=["is_active"])
        ended = sum(
            end_membership(membership=membership)
            for membership in Membership.objects.filter(user=locked, is_active=True).order_by("pk")
        )
    user.is_active = False
    return ended


def deactivate_tenant(*, slug: str) -> tuple[Tenant, Outcome]:
    """Deactivate the tenant (CLI, platform admin). Receivers of ``tenant_deactivated`` revoke its
    tokens once the deactivation is committed, as for ``end_membership``."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(schema_name=slug).first()
        if tenant is None:
            raise TenantServiceError("unknown_tenant", f"no tenant {slug!r}")
        if not tenant.is_active:
            return tenant, Outcome(False, f"tenant {slug!r} was already deactivated")
        tenant.is_active = False
        tenant.deactivated_at = timezone.now()
        with schema_context(get_public_schema_name()):
            tenant.save(update_fields=["is_active", "deactivated_at"])
        transaction.on_commit(lambda: tenant_deactivated.send(sender=Tenant, tenant=tenant))
    return tenant, Outcome(True, f"tenant {slug!r} deactivated")
