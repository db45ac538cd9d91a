"""The real TS SDK 1.x client (npm ``@modelcontextprotocol/sdk@1.32.2``, installed by ``make test``
from tests/node/ts_sdk1/package-lock.json) against the live server: registration without
``application_type``, a read tool, and a write tool that needs step-up. The SDK answers the 403 by
refreshing (modelcontextprotocol/typescript-sdk#2255); the platform refuses that refresh, the SDK drops
its tokens (``invalidateCredentials('tokens')``) and re-authorizes with the challenged scope.

Login and consent go through the platform's pages over HTTP (tests.oauth_flow.Browser): the Node
script prints the authorization URL and reads the code back on stdin.
"""

from __future__ import annotations

from pathlib import Path

from tests.oauth_flow import query_params, redirect_params, signed_in_browser
from tests.support.node_client import run_client

HARNESS = Path(__file__).parent / "node" / "ts_sdk1"


def _first_contact_id() -> int:
    from django_tenants.utils import schema_context

    from crm.models import Contact

    with schema_context("acme"):
        return Contact.objects.order_by("pk").values_list("pk", flat=True).first()


def _application_type(client_id: str) -> str:
    from django_tenants.utils import schema_context

    from oauth.models import ClientProfile

    with schema_context("acme"):
        return ClientProfile.objects.get(application__client_id=client_id).application_type


def _note_count(contact_id: int) -> int:
    from django_tenants.utils import schema_context

    from crm.models import Note

    with schema_context("acme"):
        return Note.objects.filter(contact_id=contact_id, body="written by TS SDK 1.x").count()


def test_ts_sdk1_registers_reads_and_steps_up_keeping_earlier_grants(live):
    acme = live.tenant("acme")
    browser = signed_in_browser(acme, "member@acme.test")
    contact = _first_contact_id()
    notes_before = _note_count(contact)
    requested_scopes: list[set[str]] = []

    def answer(event: dict) -> dict | None:
        if event["event"] != "authorize":
            return None
        requested_scopes.append(set(query_params(event["url"])["scope"].split()))
        return {"code": redirect_params(browser.authorize(event["url"]))["code"]}

    events = run_client(HARNESS, "@modelcontextprotocol/sdk", [acme.mcp, str(contact)], answer)
    by_name = {e["event"]: e for e in events}

    # registration without application_type: accepted, inferred native from the loopback redirect
    # (the SDK's schema drops the field from what it stores, so read the profile)
    registered = [e for e in events if e["event"] == "client"]
    assert len(registered) == 1
    assert _application_type(registered[0]["client_id"]) == "native"

    assert by_name["read"]["isError"] is False
    assert by_name["read"]["structured"]["contacts"][0]["name"] == "Grace Hopper"

    # step-up: the SDK's refresh was refused, it dropped its tokens and authorized again
    steps = [e["event"] for e in events]
    assert steps.index("unauthorized") < steps.index("write")
    invalidations = [e["scope"] for e in events if e["event"] == "invalidate"]
    assert invalidations == ["tokens"]
    assert len(requested_scopes) == 2
    assert {"crm.read", "crm.write"} <= requested_scopes[1]

    # the retried call succeeded, with the earlier grant kept
    assert by_name["write"]["isError"] is False
    assert _note_count(contact) == notes_before + 1
    assert by_name["read_again"]["isError"] is False
    assert {"crm.read", "crm.write"} <= set(by_name["done"]["scope"].split())
