"""SCIM Users of the current tenant: reads and writes of memberships as SCIM resources
(``identity.scim`` says what a resource is). Memberships change only through the tenants services
(``add_user`` restores or adds one with its role, ``end_membership`` ends one and revokes through its
receivers); a user's own facts (email, name) change only when no other tenant shares the user."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet

from identity.models import ScimUser
from identity.scim.errors import ScimError, invalid_value, not_found
from identity.scim.patch import State, apply_patch, from_body
from observability import audit
from tenants.models import Membership, Tenant
from tenants.services import add_user, end_membership

User = get_user_model()
FILTER = re.compile(r'^\s*([a-z][a-z0-9.:]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
MAX_COUNT = 200


@dataclass(frozen=True)
class Resource:
    row: ScimUser
    user: User
    membership: Membership | None

    @property
    def active(self) -> bool:
        return bool(self.membership and self.membership.is_active and self.user.is_active)

    def state(self) -> State:
        return State.of(
            email=self.user.email, full_name=self.user.full_name, external_id=self.row.external_id, active=self.active
        )


def _membership(tenant: Tenant, user_id: int) -> Membership | None:
    return Membership.objects.filter(tenant=tenant, user_id=user_id).first()


def ensure_ids(tenant: Tenant) -> None:
    """Give every active member without a SCIM resource one (members added by the CLI, an admin or a
    sign-in), so an IdP looking them up by ``userName`` finds them instead of creating them again."""
    known = ScimUser.objects.values("user_id")
    missing = Membership.objects.filter(tenant=tenant, is_active=True).exclude(user_id__in=known)
    ScimUser.objects.bulk_create(
        [ScimUser(user_id=user_id) for user_id in missing.values_list("user_id", flat=True)], ignore_conflicts=True
    )


def _filtered(rows: QuerySet[ScimUser], expression: str | None) -> QuerySet[ScimUser]:
    if not expression:
        return rows
    match = FILTER.match(expression)
    if match is None:
        raise ScimError(400, 'only filters of the form attribute eq "value" are supported', "invalidFilter")
    attribute, value = match.group(1).lower(), match.group(2).replace('\\"', '"').replace("\\\\", "\\")
    attribute = attribute.removeprefix("urn:ietf:params:scim:schemas:core:2.0:user:")
    if attribute in ("username", "emails.value", "emails"):
        return rows.filter(user__email__iexact=value.strip())
    if attribute == "externalid":
        return rows.filter(external_id=value)
    if attribute == "id":
        try:
            return rows.filter(pk=uuid.UUID(value))
        except ValueError:
            return rows.none()
    raise ScimError(400, f"filtering on {match.group(1)[:60]!r} is not supported", "invalidFilter")


def list_users(
    *, tenant: Tenant, expression: str | None, start_index: int, count: int
) -> tuple[int, int, list[Resource]]:
    """(total, start index used, the page of resources)."""
    ensure_ids(tenant)
    rows = _filtered(ScimUser.objects.select_related("user").order_by("created_at", "pk"), expression)
    total = rows.count()
    start = max(start_index, 1)
    page = list(rows[start - 1 : start - 1 + max(0, min(count, MAX_COUNT))])
    memberships = {
        m.user_id: m for m in Membership.objects.filter(tenant=tenant, user_id__in=[r.user_id for r in page])
    }
    return total, start, [Resource(r, r.user, memberships.get(r.user_id)) for r in page]


def get_user(*, tenant: Tenant, scim_id: str) -> Resource:
    try:
        key = uuid.UUID(str(scim_id))
    except ValueError:
        raise not_found() from None
    row = ScimUser.objects.select_related("user").filter(pk=key).first()
    if row is None:
        raise not_found()
    return Resource(row, row.user, _membership(tenant, row.user_id))


def _email(value: str) -> str:
    email = value.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise invalid_value("userName must be the user's email address") from None
    return email


def create_user(*, tenant: Tenant, body: object) -> Resource:
    """A new resource: a new platform user, or a membership here for an existing one (whose own facts
    are left as they are). An existing resource or active membership here is a 409."""
    state = from_body(body)
    email = _email(state.user_name)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email=email).first()
        if user is not None:
            membership = _membership(tenant, user.pk)
            if ScimUser.objects.filter(user_id=user.pk).exists() or (membership and membership.is_active):
                raise ScimError(409, "a user with this userName already exists here", "uniqueness")
            role = membership.role if membership else Membership.Role.MEMBER
        else:
            user = User.objects.create_user(email=email, password=None, full_name=state.full_name[:200])
            role = Membership.Role.MEMBER
        membership, _ = add_user(slug=tenant.schema_name, email=email, password=None, role=role)
        row = ScimUser.objects.create(user=user, external_id=state.external_id)
        if not state.active:
            end_membership(membership=membership)
    audit.record(event="scim", outcome="created", user_id=user.pk, client_id="")
    return Resource(row, user, _membership(tenant, user.pk))


def _shared(user: User, tenant: Tenant) -> bool:
    """Whether another tenant (or the platform) has a say about this user: then this tenant's IdP
    cannot rewrite the user's email or name."""
    elsewhere = Membership.objects.filter(user=user, is_active=True).exclude(tenant=tenant).exists()
    return elsewhere or user.is_superuser or user.is_staff


def _apply(tenant: Tenant, resource: Resource, wanted: State) -> Resource:
    user, row = resource.user, resource.row
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        changes = {}
        email = _email(wanted.user_name)
        if email != user.email:
            changes["email"] = email
        if wanted.full_name[:200] != user.full_name:
            changes["full_name"] = wanted.full_name[:200]
        if changes:
            if _shared(user, tenant):
                raise ScimError(400, "this user also belongs to another tenant: userName, emails and name "
                                     "cannot be changed from here", "mutability")  # fmt: skip
            if "email" in changes and User.objects.filter(email=email).exclude(pk=user.pk).exists():
                raise ScimError(409, "another user has this userName", "uniqueness")
            for name, value in changes.items():
                setattr(user, name, value)
            user.save(update_fields=list(changes))
        row.external_id = wanted.external_id
        row.save(update_fields=["external_id", "updated_at"])
        membership = _membership(tenant, user.pk)
        if wanted.active and not resource.active and membership is not None:
            add_user(slug=tenant.schema_name, email=user.email, password=None, role=membership.role)
            outcome = "restored"
        elif not wanted.active and membership is not None and membership.is_active:
            end_membership(membership=membership)  # its receivers revoke once this commits
            outcome = "deactivated"
        else:
            outcome = "updated"
    audit.record(event="scim", outcome=outcome, user_id=user.pk, client_id="")
    return Resource(row, user, _membership(tenant, user.pk))


def replace_user(*, tenant: Tenant, scim_id: str, body: object) -> Resource:
    return _apply(tenant, get_user(tenant=tenant, scim_id=scim_id), from_body(body))


def patch_user(*, tenant: Tenant, scim_id: str, body: object) -> Resource:
    resource = get_user(tenant=tenant, scim_id=scim_id)
    return _apply(tenant, resource, apply_patch(resource.state(), body))


def delete_user(*, tenant: Tenant, scim_id: str) -> None:
    """End the membership (if it is still active) and forget the resource: a later GET is a 404."""
    resource = get_user(tenant=tenant, scim_id=scim_id)
    with transaction.atomic():
        if resource.membership is not None and resource.membership.is_active:
            end_membership(membership=resource.membership)
        ScimUser.objects.filter(pk=resource.row.pk).delete()
    audit.record(event="scim", outcome="deleted", user_id=resource.user.pk, client_id="")
