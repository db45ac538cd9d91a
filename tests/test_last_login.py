"""A login writes its time to ``public.accounts_userlogin``, never to the user row: the user table is
to become a Citus reference table (docs/scaling.md), where every write is a copy on every node.

Over real HTTP against the live server: the tenant's login page (the OAuth authorize login), the
tenant admin's and the platform admin's."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import formats, timezone

from tests.conftest import PASSWORD
from tests.oauth_flow import submit_login


def _user_row(user_id: int) -> tuple:
    """The row's version (``xmin`` changes with every UPDATE) and all of its columns."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text, * FROM public.accounts_user WHERE id = %s", [user_id])
        return cursor.fetchone()


def _recorded(user_id: int):
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_login FROM public.accounts_userlogin WHERE user_id = %s", [user_id])
        row = cursor.fetchone()
    return row[0] if row else None


def _sign_in(url: str, email: str) -> None:
    with httpx.Client(follow_redirects=False, timeout=20) as http:
        assert submit_login(http, url, email, PASSWORD).status_code == 302


@pytest.fixture
def member(live, unique) -> tuple[int, str]:
    """A committed admin of acme (signs in on the tenant's and the tenant admin's login pages)."""
    from tenants.services import add_user

    email = f"last-login-{unique}@acme.test"
    add_user(slug="acme", email=email, password=PASSWORD, role="admin")
    from accounts.models import User

    return User.objects.get(email=email).pk, email  # left in place: unique emails


@pytest.mark.parametrize("page", ["login/", "admin/login/"])
def test_a_tenant_login_leaves_the_user_row_alone(live, member, page):
    user_id, email = member
    before, started = _user_row(user_id), timezone.now()
    _sign_in(live.tenant_url("acme", page), email)
    assert _user_row(user_id) == before  # not even an UPDATE that wrote the same values
    assert _recorded(user_id) >= started


def test_a_platform_admin_login_is_recorded_and_a_later_one_moves_it(live, unique):
    from accounts.models import User

    root = User.objects.create_superuser(f"root-{unique}@platform.test", PASSWORD)
    before = _user_row(root.pk)
    _sign_in(f"{live.url}/admin/login/", root.email)
    first = _recorded(root.pk)
    assert first is not None and _user_row(root.pk) == before
    _sign_in(f"{live.url}/admin/login/", root.email)
    assert _recorded(root.pk) > first
    assert _user_row(root.pk) == before


@pytest.mark.django_db
def test_user_last_login_reads_the_new_table_so_a_login_invalidates_a_reset_token():
    from django.contrib.auth.tokens import default_token_generator

    from accounts.models import User
    from accounts.services import record_login

    user = User.objects.get(email="member@acme.test")
    token = default_token_generator.make_token(user)
    at = timezone.now() + timedelta(minutes=1)  # a later login than any the fixtures made
    record_login(user_id=user.pk, at=at)
    fresh = User.objects.get(pk=user.pk)
    assert fresh.last_login == at
    assert not default_token_generator.check_token(fresh, token)


@pytest.mark.django_db
def test_the_platform_admin_shows_the_last_login(client, unique):
    from accounts.models import User

    joined = timezone.now() - timedelta(days=400)  # not to be mistaken for the login time
    root = User.objects.create_superuser(f"root-{unique}@platform.test", PASSWORD, date_joined=joined)
    assert client.post("/admin/login/", {"username": root.email, "password": PASSWORD}).status_code == 302
    shown = formats.localize(timezone.template_localtime(User.objects.get(pk=root.pk).last_login))
    page = client.get(f"/admin/accounts/user/{root.pk}/change/").text
    assert shown in page
    listing = client.get("/admin/accounts/user/", {"q": root.email, "o": "6"})  # sorted by the last login
    assert listing.status_code == 200 and shown in listing.text
    # newest first: the one who signed in before those who never did
    User.objects.create_user(f"never-{unique}@platform.test", PASSWORD)
    page = client.get("/admin/accounts/user/", {"q": unique, "o": "-6"}).text
    rows = page[page.index('id="result_list"') :]  # the header names the signed-in admin too
    assert rows.index(f"root-{unique}@") < rows.index(f"never-{unique}@")


@pytest.mark.django_db
def test_the_migration_copies_the_times_out_and_back():
    from django.db.migrations.executor import MigrationExecutor
    from django_tenants.utils import schema_context

    from accounts.models import User
    from accounts.services import record_login

    user = User.objects.get(email="admin@globex.test")
    at = timezone.now().replace(microsecond=0)
    record_login(user_id=user.pk, at=at)
    with schema_context("public"):
        MigrationExecutor(connection).migrate([("accounts", "0001_initial")])
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_login FROM accounts_user WHERE id = %s", [user.pk])
            assert cursor.fetchone()[0] == at
            cursor.execute("SELECT to_regclass('public.accounts_userlogin')")
            assert cursor.fetchone()[0] is None
        MigrationExecutor(connection).migrate([("accounts", "0002_userlogin")])
    assert _recorded(user.pk) == at
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts_user' "
            "AND column_name = 'last_login'"
        )
        assert cursor.fetchone()[0] == 0
