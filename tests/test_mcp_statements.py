"""Each hand-written statement of ``mcp_tools.statements`` against the ORM expression beside it, on
the same rows (the role subquery's own test is ``test_tenancy.test_auth_sql_mirrors_membership_active``)."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken, Application, set_token_value

from accounts.models import User
from mcp_tools import statements
from mcp_tools.models import IdempotencyRecord, ToolPolicy
from oauth.models import ClientProfile
from oauth.selectors import challenge_channel_of
from pgtenancy.prepared import fetch_prepared
from tenants.models import Membership
from tenants.services import add_user
from tests.conftest import PASSWORD


def _token(user: User, app: Application) -> str:
    raw = secrets.token_urlsafe(30)
    token = AccessToken(
        user=user, application=app, scope="crm.read", expires=timezone.now() + timedelta(hours=1), resource=["x"]
    )
    set_token_value(token, raw)
    token.save()
    return hashlib.sha256(raw.encode()).hexdigest()


def _decoded(row: tuple) -> tuple:
    """The token's audience as the ORM gives it: the statement reads the column's JSON text."""
    at = len(statements.TENANT_FIELDS) + 4
    resource = row[at]
    return (*row[:at], json.loads(resource) if isinstance(resource, str) else resource, *row[at + 1 :])


@pytest.mark.django_db
def test_the_bearer_statement_reads_what_the_orm_reads(unique):
    member = add_user(slug="acme", email=f"member-{unique}@statements.test", password=PASSWORD, role="admin")[0].user
    ended = add_user(slug="acme", email=f"ended-{unique}@statements.test", password=PASSWORD, role="member")[0].user
    Membership.objects.filter(user=ended, tenant__schema_name="acme").update(is_active=False)
    with schema_context("acme"):
        app = Application.objects.create(
            name=f"statements-{unique}",
            client_type="public",
            authorization_grant_type="authorization-code",
            redirect_uris="https://statements.example/cb",
        )
        ClientProfile.objects.update_or_create(application=app, defaults={"challenge_channel": "tool_result"})
        bare = Application.objects.create(
            name=f"statements-bare-{unique}",
            client_type="public",
            authorization_grant_type="authorization-code",
            redirect_uris="https://statements.example/cb",
        )
        ToolPolicy.objects.update_or_create(
            tool_name=f"tool-{unique}", defaults={"enabled": False, "scopes": "crm.read crm.write", "noauth": False}
        )
        checksums = {
            "member": _token(member, app),
            "ended member": _token(ended, bare),
            "unknown token": hashlib.sha256(b"no such token").hexdigest(),
            "no token": None,
        }
        rows = {}
        for kind, checksum in checksums.items():
            for tool in (f"tool-{unique}", "no-such-tool", ""):
                in_sql = fetch_prepared(statements.BEARER, [checksum, tool, "acme"])
                in_orm = statements.bearer_row(checksum, tool, "acme")
                assert len(in_sql) == 1, (kind, tool)
                assert _decoded(in_sql[0]) == in_orm, (kind, tool)
                rows[(kind, tool)] = in_orm
        assert fetch_prepared(statements.BEARER, [None, "", f"gone-{unique}"]) == []  # no such tenant
        assert statements.bearer_row(None, "", f"gone-{unique}") is None
        # the channel is read only for a refusal, by the token's client (application id in the row)
        assert [challenge_channel_of(pk) for pk in (app.pk, bare.pk, None)] == ["tool_result", "http", "http"]
    at = len(statements.TENANT_FIELDS)
    assert rows[("member", f"tool-{unique}")][at + 6 :] == ("admin", app.pk, False, "crm.read crm.write", False)
    assert rows[("ended member", "")][at + 6 :] == (None, bare.pk, None, None, None)
    assert rows[("unknown token", "")][at:] == (None,) * 11


def _scope(unique: str, n: int) -> list:
    return [n, f"client-{unique}", "crm_create_note", f"key-{unique}-{n}"]


def _record(scope: list) -> tuple:
    return (
        IdempotencyRecord.objects.filter(**dict(zip(statements.SCOPE_FIELDS, scope, strict=True)))
        .values_list(*statements.SCOPE_FIELDS, "arguments_hash", "state", "result")
        .get()
    )


@pytest.mark.django_db
def test_a_claim_inserts_once_per_scope_as_the_orm_does(unique):
    now = timezone.now()
    with schema_context("acme"), connection.cursor() as cursor:
        cursor.execute(statements.CLAIM, [*_scope(unique, 1), "digest", now, now])
        by_sql = cursor.fetchone()
        by_orm = statements.claim(_scope(unique, 2), "digest", now)
        assert by_sql is not None and by_orm is not None
        assert _record(_scope(unique, 1))[4:] == _record(_scope(unique, 2))[4:] == ("digest", "pending", None)
        # the same scope again: neither inserts
        cursor.execute(statements.CLAIM, [*_scope(unique, 2), "other", now, now])
        assert cursor.fetchone() is None
        assert statements.claim(_scope(unique, 1), "other", now) is None
        assert IdempotencyRecord.objects.filter(client_id=f"client-{unique}").count() == 2


@pytest.mark.django_db
def test_find_reads_the_record_of_its_scope_as_the_orm_does(unique):
    now = timezone.now()
    with schema_context("acme"), connection.cursor() as cursor:
        for n in (1, 2):
            statements.claim(_scope(unique, n), f"digest-{n}", now)
        for n in (1, 2, 3):
            cursor.execute(statements.FIND, _scope(unique, n))
            assert cursor.fetchall() == list(statements.find(_scope(unique, n))), n
        assert len(statements.find(_scope(unique, 3))) == 0


@pytest.mark.django_db
def test_done_stores_the_result_as_the_orm_does(unique):
    now, later = timezone.now(), timezone.now() + timedelta(seconds=5)
    result = {"content": [{"type": "text", "text": "é"}], "isError": False}
    with schema_context("acme"), connection.cursor() as cursor:
        ids = {n: statements.claim(_scope(unique, n), "digest", now) for n in (1, 2, 3)}
        cursor.execute(statements.DONE, [json.dumps(result, ensure_ascii=False), later, ids[1]])
        assert cursor.rowcount == statements.done(ids[2], json.dumps(result, ensure_ascii=False), later) == 1
        one, two, untouched = (_record(_scope(unique, n)) for n in (1, 2, 3))
        assert one[4:] == two[4:] == ("digest", "done", result)
        assert untouched[5:] == ("pending", None)
        found = IdempotencyRecord.objects.filter(pk__in=[ids[1], ids[2]]).values_list("updated_at", flat=True)
        assert set(found) == {later}


@pytest.mark.django_db
def test_delete_removes_one_record_as_the_orm_does(unique):
    now = timezone.now()
    with schema_context("acme"), connection.cursor() as cursor:
        ids = {n: statements.claim(_scope(unique, n), "digest", now) for n in (1, 2, 3)}
        cursor.execute(statements.DELETE, [ids[1]])
        assert cursor.rowcount == statements.delete(ids[2]) == 1
        left = IdempotencyRecord.objects.filter(client_id=f"client-{unique}").values_list("pk", flat=True)
        assert list(left) == [ids[3]]
