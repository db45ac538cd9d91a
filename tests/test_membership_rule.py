"""The sweeps that ask "is this user still an active member here?" follow ``Membership.objects.active()``:
the membership, its user and its tenant must all be active. The state is set with a raw UPDATE (no
signal, no service), as a database edit or a deactivation whose receivers did not run leaves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from oauth2_provider.models import AccessToken

from accounts.models import User
from connectors.lifecycle import end_departed_accounts
from connectors.models import ConnectedAccount
from oauth.sweeps import revoke_departed
from tenants.models import Membership, Tenant
from tenants.selectors import get_tenant
from tenants.services import add_user
from tests.conftest import PASSWORD
from tests.factories import application, upstream_provider


def _deactivate(what: str, user_id: int) -> None:
    """Leave the membership active and end what counts with it, behind the ORM's back."""
    with connection.cursor() as cursor:
        if what == "user":
            cursor.execute(f"UPDATE public.{User._meta.db_table} SET is_active = false WHERE id = %s", [user_id])
        else:
            cursor.execute(f"UPDATE public.{Tenant._meta.db_table} SET is_active = false WHERE schema_name = 'acme'")


@pytest.fixture(params=["user", "tenant"])
def departed(request, unique: str) -> int:
    """A member of acme whose membership row is still active while their user or the tenant is not."""
    membership, _ = add_user(slug="acme", email=f"departed-{unique}@acme.test", password=PASSWORD, role="member")
    _deactivate(request.param, membership.user_id)
    assert Membership.objects.filter(pk=membership.pk, is_active=True).exists()
    assert not Membership.objects.active().filter(pk=membership.pk).exists()
    return membership.user_id


@pytest.mark.django_db
def test_the_token_sweep_treats_the_membership_as_ended(departed: int, unique: str) -> None:
    with tenant_context(get_tenant("acme")):
        AccessToken.objects.create(
            user_id=departed,
            application=application(f"sweep-{unique}"),
            token=f"departed-{unique}",
            expires=timezone.now() + timedelta(hours=1),
            scope="crm.read",
        )
        revoke_departed(tenant_active=True)  # the tenant was active when the sweep read it
        assert not AccessToken.objects.filter(user_id=departed).exists()


@pytest.mark.django_db
def test_the_upstream_sweep_treats_the_membership_as_ended(departed: int, unique: str) -> None:
    with tenant_context(get_tenant("acme")):
        provider = upstream_provider(f"p{unique}")
        account = ConnectedAccount.objects.create(user_id=departed, provider=provider)
        end_departed_accounts(tenant_active=True)  # the tenant was active when the sweep read it
        account.refresh_from_db()
        assert (account.status, account.status_reason) == (ConnectedAccount.Status.REVOKED, "membership_ended")
