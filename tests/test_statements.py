"""Every hand-written statement of an app's ``statements.py`` (oauth: ``token_reads.py`` and
``token_writes.py``) against the ORM expression beside it (its rule), on the same rows: the two must
answer alike."""

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
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.models import User
from connectors import timing
from connectors.models import ConnectedAccount, Credential, Provider, RetiredGrant
from connectors.statements import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    GRANTED_SCOPES,
    MARK,
    REFRESH_TOKEN,
    RETIRE,
    STORE,
    ciphertext_batch,
    ciphertext_batch_rule,
    mark_rule,
    retire_rule,
    store_rule,
)
from connectors.tokens import UNCONFIRMED
from crm.models import Contact, Note
from crm.statements import CONTACT_FIELDS, CONTACT_WITH_NOTES, NOTE_FIELDS, contact_with_notes_rule
from oauth.models import StepUpChallenge
from oauth.token_reads import (
    grant_with_client,
    grant_with_client_rule,
    live_refresh_token_with_client,
    live_refresh_tokens,
)
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


def _outcome_of(write: Callable[[], None], state: Callable[[], list[tuple]]) -> list[tuple]:
    """``state()`` after ``write``, which is then undone (a savepoint), so that the statement and its
    rule can each start from the same rows."""
    savepoint = transaction.savepoint()
    write()
    rows = state()
    transaction.savepoint_rollback(savepoint)
    return rows


def _outcome(write: Callable[[], None], model: type[Model], fields: tuple[str, ...]) -> list[tuple]:
    return _outcome_of(write, lambda: sorted(model.objects.values_list(*fields), key=repr))


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


def _accounts(unique: str, cases: dict[str, dict]) -> dict[str, ConnectedAccount]:
    """One connected account of the acme member per case (each on a provider of its own), with a
    credential unless the case says ``credential=None``; the rest of a case are the account's fields."""
    user = User.objects.get(email="member@acme.test")
    accounts = {}
    for name, fields in cases.items():
        provider = Provider.objects.create(
            key=f"{name}-{unique}"[:64],
            display_name=name,
            authorization_endpoint="https://upstream.example/authorize",
            token_endpoint="https://upstream.example/token",
            revocation_endpoint="https://upstream.example/revoke",
            client_id=f"client-{name}",
            client_secret=f"secret-{name}",
        )
        fields = dict(fields)
        refresh = fields.pop("credential", f"refresh-{name}")
        accounts[name] = ConnectedAccount.objects.create(user=user, provider=provider, **fields)
        Credential.objects.create(account=accounts[name], access_token=f"access-{name}", refresh_token=refresh)
    return accounts


_ACCOUNT_FIELDS = (
    "id", "status", "status_reason", "refreshing_since", "refresh_failures", "refresh_failing_since",
    "next_refresh_at", "expires_at", "token_issued_at", "token_lifetime_seconds", "granted_scopes",
    "last_refreshed_at", "refresh_count", "updated_at",
)  # fmt: skip


@pytest.mark.django_db
def test_mark(unique: str) -> None:
    now = timezone.now()
    soon, later = now + timedelta(seconds=100), now + timedelta(days=10)
    rule = timing.Rule(300, 0.5)
    with tenant_context(get_tenant("acme")):
        accounts = _accounts(
            unique,
            {
                "due": {"expires_at": soon, "token_lifetime_seconds": 1000},  # lead min(300, 500)
                "due_no_lifetime": {"expires_at": soon},  # lead 300
                "short_lived": {"expires_at": soon, "token_lifetime_seconds": 100},  # lead 50: not due
                "fresh": {"expires_at": later},
                "interrupted": {"status": "refreshing", "expires_at": later},
                "no_refresh_token": {"expires_at": soon, "credential": None},
                "needs_reauth": {"status": "needs_reauth", "expires_at": soon},
            },
        )
        ids = [account.pk for account in accounts.values()]

        def by_statement() -> None:
            with connection.cursor() as cursor:
                for pk in ids:
                    cursor.execute(MARK, {"id": pk, "unconfirmed": UNCONFIRMED, **timing.due_params(rule, now)})

        def by_rule() -> None:
            for pk in ids:
                mark_rule(pk, rule, now)

        in_sql = _outcome(by_statement, ConnectedAccount, _ACCOUNT_FIELDS)
        assert in_sql == _outcome(by_rule, ConnectedAccount, _ACCOUNT_FIELDS)
        marked = {row[0] for row in in_sql if row[3] == now}
        assert marked == {accounts[name].pk for name in ("due", "due_no_lifetime", "interrupted")}


@pytest.mark.django_db
def test_store(unique: str) -> None:
    """New tokens into the generation they were refreshed for (a refreshing and an active account),
    none into a credential of another generation; a refresh token or scopes left out are kept."""
    now = timezone.now()
    with tenant_context(get_tenant("acme")):
        accounts = _accounts(
            unique,
            {
                "refreshing": {"status": "refreshing", "refreshing_since": now, "granted_scopes": ["a"]},
                "active": {"status_reason": "refresh_unconfirmed", "refresh_failures": 2},
                "moved_on": {"status": "refreshing"},
            },
        )
        Credential.objects.filter(account=accounts["moved_on"]).update(generation=1)
        writes = [
            (accounts["refreshing"].pk, {"refresh": "r2", "scopes": ["a", "b"], "lifetime": 3600}),
            (accounts["active"].pk, {"refresh": None, "scopes": None, "lifetime": None}),
            (accounts["moved_on"].pk, {"refresh": "r3", "scopes": ["c"], "lifetime": 60}),
        ]
        common = {"generation": 0, "now": now, "access": "a2", "token_type": "Bearer"}

        def by_statement() -> None:
            with connection.cursor() as cursor:
                for pk, write in writes:
                    refresh, scopes = write["refresh"], write["scopes"]
                    cursor.execute(
                        STORE,
                        {
                            **common,
                            "id": pk,
                            "access": ACCESS_TOKEN.get_db_prep_save("a2", connection),
                            "refresh": REFRESH_TOKEN.get_db_prep_save(refresh, connection) if refresh else None,
                            "expires_at": now + timedelta(hours=1),
                            "lifetime": write["lifetime"],
                            "scopes": GRANTED_SCOPES.get_db_prep_save(scopes, connection) if scopes else None,
                        },
                    )

        def by_rule() -> None:
            for pk, write in writes:
                store_rule(pk, **common, **write, expires_at=now + timedelta(hours=1))

        credential_fields = ("account_id", "access_token", "refresh_token", "token_type", "generation")

        def state() -> list[tuple]:
            accounts_now = sorted(ConnectedAccount.objects.values_list(*_ACCOUNT_FIELDS))
            return accounts_now + sorted(Credential.objects.values_list(*credential_fields))

        in_sql = _outcome_of(by_statement, state)
        assert in_sql == _outcome_of(by_rule, state)
        access_now = {row[0]: row[1] for row in in_sql if len(row) == len(credential_fields)}
        assert [access_now[accounts[name].pk] for name in ("refreshing", "active", "moved_on")] == [
            "a2",
            "a2",
            "access-moved_on",
        ]


@pytest.mark.django_db
@pytest.mark.parametrize("one_account", [False, True])
def test_retire(unique: str, one_account: bool) -> None:
    now = timezone.now()
    with tenant_context(get_tenant("acme")):
        account = _accounts(unique, {"retire": {}})["retire"]
        provider = account.provider
        other = ConnectedAccount.objects.create(user=User.objects.get(email="admin@acme.test"), provider=provider)
        Credential.objects.create(account=other, access_token="access-other", refresh_token=None)
        account_id = account.pk if one_account else None
        params = {
            "reason": "provider_changed",
            "endpoint": provider.revocation_endpoint,
            "client_id": provider.client_id,
            "secret": CLIENT_SECRET.get_db_prep_save(provider.client_secret, connection),
            "method": provider.token_endpoint_auth_method,
            "now": now,
            "provider": provider.pk,
            "account": account_id,
        }

        def by_statement() -> None:
            with connection.cursor() as cursor:
                cursor.execute(RETIRE, params)

        def by_rule() -> None:
            retire_rule(provider=provider, reason="provider_changed", account_id=account_id, now=now)

        fields = tuple(f.attname for f in RetiredGrant._meta.concrete_fields if f.attname != "id")
        in_sql = _outcome(by_statement, RetiredGrant, fields)
        assert in_sql == _outcome(by_rule, RetiredGrant, fields)
        assert len([row for row in in_sql if row[0] == provider.pk]) == (1 if one_account else 2)


@pytest.mark.django_db
def test_ciphertext_batch(unique: str) -> None:
    """The batches of re-encryption, for a column that may be empty and one that may not."""
    with tenant_context(get_tenant("acme")):
        accounts = _accounts(unique, {"one": {}, "two": {"credential": None}, "three": {}, "four": {}})
        first = min(account.credential.pk for account in accounts.values())
        for field_name in ("refresh_token", "access_token"):
            field = Credential._meta.get_field(field_name)
            for after, size in ((0, 1000), (first, 2), (first - 1, 1)):
                with connection.cursor() as cursor:
                    cursor.execute(ciphertext_batch(Credential, field), [after, size])
                    in_sql = [row[0] for row in cursor.fetchall()]
                rule = ciphertext_batch_rule(Credential, field, after, size)
                assert in_sql == list(rule.values_list("pk", flat=True))
                assert in_sql


@pytest.mark.django_db
def test_token_endpoint_reads(unique: str) -> None:
    """The code's grant and the live refresh token, each read with its client: found for the right
    client, not for another; a revoked refresh token is not live. The refresh token's family began
    with an older token and was challenged inside the window."""
    user = User.objects.get(email="member@acme.test")
    now = timezone.now()
    with tenant_context(get_tenant("acme")):
        mine, theirs = application(f"reads-{unique}"), application(f"other-{unique}")
        Grant.objects.create(
            user=user, application=mine, code=f"code-{unique}", expires=now + timedelta(minutes=1),
            redirect_uri="https://app.example/cb", scope="crm.read",
        )  # fmt: skip
        family = uuid.uuid4()
        first = RefreshToken.objects.create(
            user=user, application=mine, token=f"first-{unique}", token_family=family, revoked=now
        )
        access = AccessToken.objects.create(
            user=user, application=mine, token=f"access-{unique}", expires=now + timedelta(hours=1), scope="crm.read"
        )
        RefreshToken.objects.create(
            user=user, application=mine, token=f"live-{unique}", token_family=family, access_token=access
        )
        StepUpChallenge.objects.create(token_family=family, scope="crm.write", challenged_at=now)
        since = now - timedelta(minutes=1)

        for code, client in ((f"code-{unique}", mine), (f"code-{unique}", theirs), ("no-such-code", mine)):
            grant = grant_with_client(code, client.client_id)
            rule = grant_with_client_rule(code, client.client_id).first()
            assert _grant(grant) == _grant(rule)
        assert _grant(grant_with_client(f"code-{unique}", mine.client_id)) is not None

        for raw, client in ((f"live-{unique}", mine), (f"live-{unique}", theirs), (f"first-{unique}", mine)):
            digest = hashlib.sha256(raw.encode()).hexdigest()
            in_sql = live_refresh_token_with_client(digest, client.client_id, since)
            rule = live_refresh_tokens(digest, since).filter(application__client_id=client.client_id).first()
            assert _refresh(in_sql) == _refresh(rule)
        live = live_refresh_token_with_client(
            hashlib.sha256(f"live-{unique}".encode()).hexdigest(), mine.client_id, since
        )
        assert (live.family_started, live.challenged_scope) == (first.created, "crm.write")


def _grant(grant: Grant | None) -> tuple | None:
    return None if grant is None else (grant.pk, grant.application.pk, grant.user.pk)


def _refresh(rt: RefreshToken | None) -> tuple | None:
    if rt is None:
        return None
    return (rt.pk, rt.access_token.pk, rt.user.pk, rt.application_id, rt.family_started, rt.challenged_scope)
