"""Every hand-written statement of an app's ``statements.py`` (oauth: ``token_writes.py``) against
the ORM expression beside it (its rule), on the same rows: the two must answer alike."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from django_tenants.utils import tenant_context
from oauth2_provider.models import AccessToken, RefreshToken

from accounts.models import User
from crm.models import Contact, Note
from crm.statements import CONTACT_FIELDS, CONTACT_WITH_NOTES, NOTE_FIELDS, contact_with_notes_rule
from oauth.models import StepUpChallenge
from oauth.token_writes import record_step_up, record_step_up_rule
from observability.models import AuthEvent
from observability.statements import (
    count_unattributed_rule,
    count_unattributed_sql,
    insert_events_async_commit,
    insert_events_rule,
)
from pgtenancy.prepared import fetch_prepared
from tenants.models import Domain
from tenants.selectors import get_tenant
from tenants.statements import (
    TENANT_BY_HOST,
    TENANT_BY_SLUG,
    TENANT_FIELDS,
    tenant_by_host_rule,
    tenant_by_slug_rule,
)
from tests.factories import application


def _rows(sql: str, value: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        return cursor.fetchall()


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["acme", "globex", "nosuch"])
def test_tenant_by_slug(slug: str) -> None:
    rule = list(tenant_by_slug_rule(slug).values_list(*TENANT_FIELDS))
    assert _rows(TENANT_BY_SLUG, slug) == rule
    assert len(rule) == (slug != "nosuch")


@pytest.mark.django_db
def test_tenant_by_host(unique: str) -> None:
    Domain.objects.create(domain=f"{unique}.acme.test", tenant=get_tenant("acme"))
    Domain.objects.create(domain=f"{unique}.globex.test", tenant=get_tenant("globex"), is_primary=False)
    for host in (f"{unique}.acme.test", f"{unique}.globex.test", f"{unique}.nosuch.test"):
        rule = list(tenant_by_host_rule(host).values_list(*TENANT_FIELDS))
        assert _rows(TENANT_BY_HOST, host) == rule
        assert len(rule) == ("nosuch" not in host)


@pytest.mark.django_db
def test_contact_with_notes() -> None:
    """A contact with more notes than the statement returns (two written in the same instant: the id
    breaks the tie), one with none, and one that does not exist."""
    with tenant_context(get_tenant("acme")):
        busy = Contact.objects.create(name="Busy", email="busy@example.test")
        notes = Note.objects.bulk_create([Note(contact=busy, body=f"note {i}", author_user_id=1) for i in range(7)])
        Note.objects.filter(pk__in=[notes[2].pk, notes[5].pk]).update(created_at=notes[0].created_at)
        quiet = Contact.objects.create(name="Quiet")
        for contact_id in (busy.pk, quiet.pk, quiet.pk + 1000):
            rows = fetch_prepared(CONTACT_WITH_NOTES, [5, contact_id])
            contacts, latest = contact_with_notes_rule(contact_id, 5)
            split = len(CONTACT_FIELDS)
            assert sorted({row[:split] for row in rows}) == list(contacts.values_list(*CONTACT_FIELDS))
            assert [row[split:] for row in rows if row[split] is not None] == list(latest.values_list(*NOTE_FIELDS))
        assert len(latest) == 0 and len(contact_with_notes_rule(busy.pk, 5)[1]) == 5


def _outcome(write: Callable[[], None], model: type[Model], fields: tuple[str, ...]) -> list[tuple]:
    """The rows of ``model`` after ``write``, which is then undone (a savepoint), so that the statement
    and its rule can each start from the same rows."""
    savepoint = transaction.savepoint()
    write()
    rows = sorted(model.objects.values_list(*fields), key=repr)
    transaction.savepoint_rollback(savepoint)
    return rows


_EVENT_FIELDS = tuple(f.attname for f in AuthEvent._meta.concrete_fields if f.attname not in ("id", "created_at"))


def _events() -> list[AuthEvent]:
    return [
        AuthEvent(tenant="acme", event="token", outcome="issued", client_id="c1", user_id=7, request_id="r1"),
        AuthEvent(tenant="acme", event="challenge", auth_class="insufficient_scope", source_address="2001:db8::1"),
    ]


@pytest.mark.django_db
def test_insert_events() -> None:
    with tenant_context(get_tenant("acme")):
        in_sql = _outcome(lambda: insert_events_async_commit(_events()), AuthEvent, _EVENT_FIELDS)
        assert in_sql == _outcome(lambda: insert_events_rule(_events()), AuthEvent, _EVENT_FIELDS)
        assert len(in_sql) >= 2


@pytest.mark.django_db
@pytest.mark.parametrize("async_commit", [True, False])
def test_count_unattributed(async_commit: bool) -> None:
    """Three failures of one kind and one of another: two aggregate rows, counting 3 and 1, on a minute."""
    kinds = [("unknown_token", "invalid_token", "refused")] * 3 + [("no_credentials", "", "refused")]

    def by_statement() -> None:
        with connection.cursor() as cursor:
            for event, auth_class, outcome in kinds:
                cursor.execute(count_unattributed_sql(async_commit=async_commit), ["acme", event, auth_class, outcome])

    def by_rule() -> None:
        for event, auth_class, outcome in kinds:
            count_unattributed_rule(tenant="acme", event=event, auth_class=auth_class, outcome=outcome)

    with tenant_context(get_tenant("acme")):
        AuthEvent.objects.filter(aggregated=True).delete()
        in_sql = _outcome(by_statement, AuthEvent, (*_EVENT_FIELDS, "created_at"))
        by_the_rule = _outcome(by_rule, AuthEvent, (*_EVENT_FIELDS, "created_at"))
        assert [row[:-1] for row in in_sql] == [row[:-1] for row in by_the_rule]
        assert sorted(row[_EVENT_FIELDS.index("count")] for row in in_sql) == [1, 3]
        assert {(row[-1].second, row[-1].microsecond) for row in in_sql + by_the_rule} == {(0, 0)}


@pytest.mark.django_db
def test_record_step_up(unique: str) -> None:
    """A token of a family not yet challenged, one of a family challenged before (updated), and one
    with no refresh token (no family: nothing recorded)."""
    user = User.objects.get(email="member@acme.test")
    earlier = timezone.now() - timedelta(minutes=5)
    with tenant_context(get_tenant("acme")):
        client = application(f"stepup-{unique}")
        raws = {}
        for name, family in (("new", uuid.uuid4()), ("again", uuid.uuid4()), ("alone", None)):
            raws[name] = f"{name}-{unique}"
            access = AccessToken.objects.create(
                user=user, application=client, token=raws[name], expires=earlier + timedelta(hours=1), scope="crm.read"
            )
            if family is not None:
                RefreshToken.objects.create(
                    user=user, application=client, token=f"r{name}-{unique}", access_token=access, token_family=family
                )
            if name == "again":
                StepUpChallenge.objects.create(token_family=family, scope="crm.read", challenged_at=earlier)
        asks = [(hashlib.sha256(raw.encode()).hexdigest(), f"crm.write {name}") for name, raw in raws.items()]

        def by(write: Callable[[str, str], None]) -> Callable[[], None]:
            return lambda: [write(digest, scope) for digest, scope in asks]

        fields = ("token_family", "scope", "challenged_at")
        in_sql = _outcome(by(record_step_up), StepUpChallenge, fields)
        by_the_rule = _outcome(by(record_step_up_rule), StepUpChallenge, fields)
        assert [row[:2] for row in in_sql] == [row[:2] for row in by_the_rule]
        mine = [row for row in in_sql if row[1].startswith("crm.write")]
        assert sorted(row[1] for row in mine) == ["crm.write again", "crm.write new"]
        assert all(row[2] > earlier for row in mine)
