"""The platform admin deactivates tenants and ends memberships through ``tenants.services`` only, so
the real receivers revoke tokens; ``deactivate_tenant`` is atomic and signals on
commit. These tests run inside the test transaction: on-commit callbacks are captured and run with
pytest-django's ``django_capture_on_commit_callbacks``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken, RefreshToken

from tenants.models import Membership, Tenant
from tenants.services import deactivate_tenant
from tests.conftest import PASSWORD
from tests.factories import application

pytestmark = pytest.mark.django_db


def _token_pair(slug: str, email: str) -> tuple[int, int]:
    """A live access + refresh token for ``email`` in ``slug``'s schema (as the token endpoint stores them)."""
    from accounts.models import User

    user = User.objects.get(email=email)
    with schema_context(slug):
        app = application("Admin service test")
        access = AccessToken.objects.create(
            user=user,
            application=app,
            token="",
            token_checksum=uuid.uuid4().hex,
            expires=timezone.now() + timedelta(hours=1),
            scope="crm.read",
        )
        refresh = RefreshToken.objects.create(
            user=user, application=app, token="", token_checksum=uuid.uuid4().hex, access_token=access
        )
    return access.pk, refresh.pk


def _alive(slug: str, pair: tuple[int, int]) -> bool:
    with schema_context(slug):
        access = AccessToken.objects.filter(pk=pair[0]).exists()
        refresh = RefreshToken.objects.filter(pk=pair[1], revoked__isnull=True).exists()
    assert access == refresh, "access and refresh token out of step"
    return access


@pytest.fixture
def root(client, django_user_model):
    django_user_model.objects.create_superuser(f"root-{uuid.uuid4().hex[:8]}@platform.test", PASSWORD)
    user = django_user_model.objects.filter(is_superuser=True).latest("pk")
    assert client.post("/admin/login/", {"username": user.email, "password": PASSWORD}).status_code == 302
    return client


def _tenant_form(tenant: Tenant, **changes) -> dict:
    data = {
        "name": tenant.name,
        "access_token_lifetime_seconds": tenant.access_token_lifetime_seconds,
        "domains-TOTAL_FORMS": "0",
        "domains-INITIAL_FORMS": "0",
        "_save": "Save",
    }
    if tenant.is_active:
        data["is_active"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_unticking_is_active_deactivates_through_the_service(root, django_capture_on_commit_callbacks):
    pair = _token_pair("acme", "member@acme.test")
    acme = Tenant.objects.get(schema_name="acme")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = root.post(f"/admin/tenants/tenant/{acme.pk}/change/", _tenant_form(acme, is_active=None))
    assert response.status_code == 302, response.content[:800]
    acme.refresh_from_db()
    assert not acme.is_active and acme.deactivated_at is not None
    assert len(callbacks) == 1
    assert not _alive("acme", pair)


def test_editing_an_active_tenant_revokes_nothing(root, django_capture_on_commit_callbacks):
    pair = _token_pair("acme", "member@acme.test")
    acme = Tenant.objects.get(schema_name="acme")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = root.post(f"/admin/tenants/tenant/{acme.pk}/change/", _tenant_form(acme, name="Acme Renamed"))
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.is_active and acme.name == "Acme Renamed" and callbacks == []
    assert _alive("acme", pair)


def _run_action(root, capture_on_commit, changelist: str, action: str, pk: int) -> None:
    """Run an admin action on one row, its on-commit callbacks included."""
    with capture_on_commit(execute=True):
        response = root.post(changelist, {"action": action, "_selected_action": [pk], "index": "0"})
    assert response.status_code == 302


def test_deactivate_action(root, django_capture_on_commit_callbacks):
    pair = _token_pair("globex", "member@globex.test")
    globex = Tenant.objects.get(schema_name="globex")
    _run_action(root, django_capture_on_commit_callbacks, "/admin/tenants/tenant/", "deactivate", globex.pk)
    globex.refresh_from_db()
    assert not globex.is_active and not _alive("globex", pair)


def test_tenants_and_memberships_cannot_be_deleted_raw(root):
    acme = Tenant.objects.get(schema_name="acme")
    membership = Membership.objects.get(user__email="member@acme.test", tenant=acme)
    assert root.get(f"/admin/tenants/tenant/{acme.pk}/delete/").status_code == 403
    assert root.post(f"/admin/tenants/tenant/{acme.pk}/delete/", {"post": "yes"}).status_code == 403
    assert root.get(f"/admin/tenants/membership/{membership.pk}/delete/").status_code == 403
    listing = root.get("/admin/tenants/membership/").content.decode()
    assert "delete_selected" not in listing and "end_selected" in listing
    removed = root.post(
        "/admin/tenants/membership/", {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"}
    )
    assert removed.status_code == 302  # "No action selected": the refused action does nothing
    assert Membership.objects.filter(pk=membership.pk, is_active=True).exists()


def test_end_membership_action_revokes_the_members_tokens(root, django_capture_on_commit_callbacks):
    pair = _token_pair("globex", "member@globex.test")
    kept = _token_pair("globex", "admin@globex.test")
    membership = Membership.objects.get(user__email="member@globex.test", tenant__schema_name="globex")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = root.post(
            "/admin/tenants/membership/", {"action": "end_selected", "_selected_action": [membership.pk], "index": "0"}
        )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert not membership.is_active and membership.ended_at is not None and len(callbacks) == 1
    assert not _alive("globex", pair) and _alive("globex", kept)


def test_unticking_a_membership_revokes_with_the_real_receiver(root, django_capture_on_commit_callbacks):
    pair = _token_pair("acme", "member@acme.test")
    membership = Membership.objects.get(user__email="member@acme.test", tenant__schema_name="acme")
    admin_of_globex = Membership.objects.get(user__email="admin@globex.test").user_id
    with django_capture_on_commit_callbacks(execute=True):
        response = root.post(
            f"/admin/tenants/membership/{membership.pk}/change/",
            # user and tenant are read-only on an existing membership: moving it would skip revocation
            {"role": "member", "user": admin_of_globex, "_save": "Save"},
        )
    assert response.status_code == 302, response.content[:800]
    membership.refresh_from_db()
    assert not membership.is_active and membership.user.email == "member@acme.test"
    assert not _alive("acme", pair)


def test_deactivate_tenant_signals_only_after_commit(django_capture_on_commit_callbacks):
    pair = _token_pair("acme", "member@acme.test")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tenant, outcome = deactivate_tenant(slug="acme")
    assert outcome.changed and not tenant.is_active
    assert _alive("acme", pair)  # nothing revoked before the commit
    assert len(callbacks) == 1
    callbacks[0]()
    assert not _alive("acme", pair)
    assert deactivate_tenant(slug="acme")[1].changed is False


def test_deactivate_tenant_is_atomic(django_capture_on_commit_callbacks):
    pair = _token_pair("acme", "member@acme.test")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        deactivate_tenant(slug="acme")
        raise RuntimeError("the surrounding work failed")
    acme = Tenant.objects.get(schema_name="acme")
    assert acme.is_active and acme.deactivated_at is None
    assert callbacks == [] and _alive("acme", pair)


def _user_form(user, **changes) -> dict:
    data = {
        "email": user.email,
        "full_name": user.full_name,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "is_active": "on",
        "_save": "Save",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_users_cannot_be_deleted_raw(root):
    """A user's delete would cascade into tenant-schema tables (a crash) and skip the revocations."""
    from accounts.models import User

    member = User.objects.get(email="member@acme.test")
    assert root.get(f"/admin/accounts/user/{member.pk}/delete/").status_code == 403
    assert root.post(f"/admin/accounts/user/{member.pk}/delete/", {"post": "yes"}).status_code == 403
    listing = root.get("/admin/accounts/user/").content.decode()
    assert "delete_selected" not in listing and "deactivate_selected" in listing
    assert User.objects.filter(pk=member.pk, is_active=True).exists()


def test_unticking_a_user_ends_every_membership_and_revokes(root, django_capture_on_commit_callbacks):
    from accounts.models import User
    from tenants.services import add_user

    user = User.objects.get(email="member@acme.test")
    add_user(slug="globex", email=user.email, password=None, role="member")  # a member of both tenants
    in_acme, in_globex = _token_pair("acme", user.email), _token_pair("globex", user.email)
    kept = _token_pair("acme", "admin@acme.test")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = root.post(f"/admin/accounts/user/{user.pk}/change/", _user_form(user, is_active=None))
    assert response.status_code == 302, response.content[:800]
    user.refresh_from_db()
    assert not user.is_active and len(callbacks) == 2
    assert not Membership.objects.filter(user=user, is_active=True).exists()
    assert not _alive("acme", in_acme) and not _alive("globex", in_globex) and _alive("acme", kept)


def test_deactivate_users_action(root, django_capture_on_commit_callbacks):
    from accounts.models import User

    user = User.objects.get(email="member@globex.test")
    pair = _token_pair("globex", user.email)
    _run_action(root, django_capture_on_commit_callbacks, "/admin/accounts/user/", "deactivate_selected", user.pk)
    user.refresh_from_db()
    assert not user.is_active and not _alive("globex", pair)
    assert not Membership.objects.filter(user=user, is_active=True).exists()
