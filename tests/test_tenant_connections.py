"""Many tenants: one PostgreSQL connection serving calls that alternate between tenants.

The hot statements are prepared once per tenant schema, schema-qualified (``pgtenancy.prepared``), so
each tenant keeps its plan and reads its own tables; a connection that has served
``DATABASE_CONNECTION_MAX_SCHEMAS`` schemas is closed after the request (``pgtenancy.recycling``), so a
backend's memory stays bounded whatever the number of tenants. Requests run in this process, in
autocommit (the ``live`` fixture's committed database), as in production."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from crm.models import Contact
from probe.mcp_wire import modern_message
from tests.support.mcp import token_for


def _first_contact(slug: str) -> Contact:
    with schema_context(slug):
        return Contact.objects.order_by("pk").first()


@pytest.fixture
def callers(live):
    """(slug, token, contact) for acme and globex, and an in-process client on the live server's host
    (the tokens' audience)."""
    found = []
    for slug in ("acme", "globex"):
        token, _ = token_for(live, slug, f"member@{slug}.test")
        found.append((slug, token, _first_contact(slug)))
    client = Client(HTTP_HOST=urlsplit(live.url).netloc)
    connection.close()  # a fresh connection for the test's own requests
    return client, found


def _call(client: Client, slug: str, token: str, contact_id: int):
    body, headers = modern_message("tools/call", {"name": "crm_get_contact", "arguments": {"contact_id": contact_id}})
    headers.pop("Content-Type")
    return client.post(
        f"/t/{slug}/mcp",
        data=json.dumps(body),
        content_type="application/json",
        headers={**headers, "Authorization": f"Bearer {token}"},
    )


def _contact_name(response) -> str:
    assert response.status_code == 200, response.content[:300]
    result = response.json()["result"]
    assert result["isError"] is False, result
    return json.dumps(result)


def _prepared_for(schema: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            [f'%"{schema}".oauth2_provider_accesstoken%'],
        )
        return cursor.fetchone()[0]


def test_alternating_tenants_each_read_their_own_rows_with_their_own_statement(callers, settings):
    settings.DATABASE_CONNECTION_MAX_SCHEMAS = 0
    client, found = callers
    for _ in range(3):
        for slug, token, contact in found:
            assert contact.name in _contact_name(_call(client, slug, token, contact.pk))
    # one prepared bearer statement per schema, kept while the connection went back and forth
    assert _prepared_for("acme") == 1 and _prepared_for("globex") == 1
    # a tenant's token is unknown in the other tenant's schema, whichever statement ran last
    (_, acme_token, acme_contact), (globex, _, _) = found
    refused = _call(client, globex, acme_token, acme_contact.pk)
    assert refused.status_code == 401, refused.content[:300]


def test_connection_closed_after_serving_the_maximum_number_of_schemas(callers, settings):
    settings.DATABASE_CONNECTION_MAX_SCHEMAS = 2
    client, [(acme, acme_token, acme_contact), (globex, globex_token, globex_contact)] = callers
    _contact_name(_call(client, acme, acme_token, acme_contact.pk))
    first = connection.connection
    assert first is not None
    _contact_name(_call(client, acme, acme_token, acme_contact.pk))
    assert connection.connection is first  # one schema so far: kept
    _contact_name(_call(client, globex, globex_token, globex_contact.pk))
    assert connection.connection is None  # the second schema: closed after the request
    # the next call opens a new connection, which counts from zero
    _contact_name(_call(client, globex, globex_token, globex_contact.pk))
    second = connection.connection
    assert second is not None and second is not first
    _contact_name(_call(client, globex, globex_token, globex_contact.pk))
    assert connection.connection is second


def test_no_limit_keeps_the_connection(callers, settings):
    settings.DATABASE_CONNECTION_MAX_SCHEMAS = 0
    client, found = callers
    _contact_name(_call(client, *found[0][:2], found[0][2].pk))
    kept = connection.connection
    for slug, token, contact in found * 2:
        _contact_name(_call(client, slug, token, contact.pk))
    assert connection.connection is kept


def test_a_tenant_statement_must_qualify_every_table():
    """Sent without setting search_path (still another tenant's, perhaps): an unqualified table would be
    read from that other tenant, so such a statement is refused when it is defined."""
    from pgtenancy.prepared import TenantStatement

    TenantStatement("SELECT 1 FROM {tenant}.crm_contact c JOIN public.tenants_tenant t ON TRUE WHERE c.id = %s")
    for unqualified in (
        "SELECT 1 FROM crm_contact WHERE id = %s AND {tenant} IS NULL",
        "SELECT 1 FROM {tenant}.crm_contact c JOIN crm_note n ON n.contact_id = c.id WHERE c.id = %s",
        "SELECT 1 FROM {tenant}.crm_contact c LEFT JOIN LATERAL (SELECT 1 FROM crm_note) n ON TRUE",
    ):
        with pytest.raises(ValueError, match="qualify every table"):
            TenantStatement(unqualified)


def test_the_kept_cursor_belongs_to_the_connection_in_use(callers, settings):
    """``fetch_prepared`` keeps one cursor per connection; after the connection is closed (recycled,
    or lost) the next statement gets a cursor of the new connection, never the old one's."""
    settings.DATABASE_CONNECTION_MAX_SCHEMAS = 0
    client, [(acme, acme_token, acme_contact), *_] = callers
    _contact_name(_call(client, acme, acme_token, acme_contact.pk))
    kept = connection._pgtenancy_cursor
    assert kept.connection is connection.connection
    _contact_name(_call(client, acme, acme_token, acme_contact.pk))
    assert connection._pgtenancy_cursor is kept  # both statements of both calls: the same cursor
    connection.close()
    assert kept.connection.closed
    _contact_name(_call(client, acme, acme_token, acme_contact.pk))
    assert connection._pgtenancy_cursor is not kept
    assert connection._pgtenancy_cursor.connection is connection.connection
