"""``pgtenancy.transaction_pooling`` through a real PgBouncer in transaction mode (docs/scaling.md).

Two Django connections (two clients of PgBouncer) share one server connection (``pool_size=1``),
one in acme, one in globex, and take turns. The django-tenants backend as the platform configures it
(``TENANT_LIMIT_SET_CALLS``) reads the other tenant's schema there; the transaction-pooling backend
must not, in autocommit, inside ``atomic()`` and in ``executemany``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import connections, transaction

from crm.models import Contact
from probe.pgbouncer import EXECUTABLE as PGBOUNCER_EXECUTABLE
from probe.pgbouncer import pgbouncer
from tests.support.net import free_port

pytestmark = pytest.mark.skipif(
    PGBOUNCER_EXECUTABLE is None,
    reason="pgbouncer is not installed (apt-get install pgbouncer): this backend is only tested through a real one",
)


@pytest.fixture
def bouncer(live) -> Iterator[dict]:
    """PgBouncer, transaction mode, one server connection, in front of the test database."""
    upstream = connections["default"].settings_dict
    port = free_port()
    with pgbouncer(
        # the embedded PostgreSQL's socket directory comes as ?host=... in DATABASE_URL, so in OPTIONS
        host=upstream["HOST"] or upstream.get("OPTIONS", {}).get("host") or "127.0.0.1",
        port=upstream["PORT"] or 5432,
        dbname=upstream["NAME"],
        user=upstream["USER"] or "postgres",
        alias="pooled",
        pool_mode="transaction",
        pool_size=1,
        listen_port=port,
    ):
        yield {**upstream, "HOST": "127.0.0.1", "PORT": port, "NAME": "pooled", "CONN_MAX_AGE": 0}


@pytest.fixture
def client_pair(bouncer) -> Iterator[Callable[[str], tuple[str, str]]]:
    """``client_pair(engine)``: two connection aliases through the bouncer, in acme and in globex."""
    made: list[str] = []

    def make(engine: str) -> tuple[str, str]:
        aliases = []
        for slug in ("acme", "globex"):
            alias = f"pooled_{engine.rsplit('.', 1)[-1]}_{slug}"
            settings_dict = {**bouncer, "ENGINE": engine, "DISABLE_SERVER_SIDE_CURSORS": True}
            backend = __import__(f"{engine}.base", fromlist=["DatabaseWrapper"])
            connections[alias] = backend.DatabaseWrapper(settings_dict, alias)
            connections[alias].set_schema(slug)
            made.append(alias)
            aliases.append(alias)
        return aliases[0], aliases[1]

    yield make
    for alias in made:
        connections[alias].close()
        del connections[alias]


def _schema(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


def _alternate(a: str, b: str, rounds: int = 10) -> list[tuple[str, str]]:
    return [(_schema(a), _schema(b)) for _ in range(rounds)]


def test_the_tenant_backend_reads_the_other_tenant_behind_transaction_pooling(client_pair) -> None:
    """The check below is not vacuous: this PgBouncer does hand one client's search path to the other."""
    a, b = client_pair("django_tenants.postgresql_backend")
    assert ("globex", "globex") in _alternate(a, b)


def test_every_statement_runs_in_its_own_tenant(client_pair) -> None:
    a, b = client_pair("pgtenancy.transaction_pooling")
    assert set(_alternate(a, b)) == {("acme", "globex")}
    # the ORM, parameters included: each client finds its own tenant's demo contact, never the other's
    for _ in range(3):
        assert Contact.objects.using(a).filter(email="ada@acme.example").exists()
        assert not Contact.objects.using(b).filter(email="ada@acme.example").exists()
        assert Contact.objects.using(b).filter(email="hank@globex.example").exists()
        assert not Contact.objects.using(a).filter(email="hank@globex.example").exists()


def test_transactions_savepoints_and_executemany_stay_in_the_tenant(client_pair, unique) -> None:
    a, b = client_pair("pgtenancy.transaction_pooling")
    _schema(b)  # globex's client used the server connection last
    emails = [f"{unique}-{n}@pool.example" for n in range(3)]
    with transaction.atomic(using=a):
        assert _schema(a) == "acme"
        with connections[a].cursor() as cursor:
            cursor.executemany(
                "INSERT INTO crm_contact (name, email, company, phone, created_at, updated_at) "
                "VALUES (%s, %s, '', '', now(), now())",
                [("pooled", email) for email in emails],
            )
        try:
            with transaction.atomic(using=a):
                assert Contact.objects.using(a).filter(email=emails[0]).update(name="rolled back") == 1
                raise RuntimeError
        except RuntimeError:
            pass
        assert _schema(a) == "acme"
    _schema(b)
    with connections[a].cursor() as cursor:  # executemany in autocommit: its own transaction
        cursor.executemany("UPDATE crm_contact SET company = %s WHERE email = %s", [("acme", e) for e in emails])
    assert _alternate(a, b, rounds=2) == [("acme", "globex")] * 2
    created = Contact.objects.using(a).create(name="returning", email=f"{unique}-r@pool.example")  # RETURNING id
    _schema(b)
    assert Contact.objects.using(a).get(pk=created.pk).email == created.email
    assert not Contact.objects.using(b).filter(email=created.email).exists()
    created.delete()
    mine = Contact.objects.using(a).filter(email__in=emails)
    assert sorted(mine.values_list("name", "company")) == [("pooled", "acme")] * 3
    assert not Contact.objects.using(b).filter(email__in=emails).exists()
    mine.delete()
