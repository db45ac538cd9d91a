"""Exactly-once: a write tool called with an idempotency key applies exactly once, over real HTTP against
the live server: a response lost after commit, retries after a refresh and after a step-up, ten
concurrent duplicates, a key reused with other arguments, a membership ended between the check and the
commit, and the purge of expired keys."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken

from crm.models import Contact, Note
from declarations.idempotency import IDEMPOTENCY_META_KEY, IDEMPOTENCY_TOOL_META, IDEMPOTENT_REPLAY_META
from mcp_tools.models import IdempotencyRecord
from tenants.models import Membership
from tenants.services import add_user
from tests.conftest import PASSWORD
from tests.idempotency_client import call_and_hang_up, keyed_call
from tests.mcp_raw import modern_request
from tests.oauth_flow import (
    REDIRECT_URI,
    Browser,
    Client,
    Tenant,
    obtain_tokens,
    refresh,
    signed_in,
    signed_in_browser,
)
from tests.support.mcp import result_of

pytestmark = pytest.mark.timeout(120)


def acme(live) -> Tenant:
    return live.tenant("acme")


def a_contact() -> int:
    with schema_context("acme"):
        return Contact.objects.order_by("pk").values_list("pk", flat=True).first()


def notes_with(body: str) -> list[int]:
    with schema_context("acme"):
        return list(Note.objects.filter(body=body).values_list("pk", flat=True))


def records(key: str) -> list[IdempotencyRecord]:
    with schema_context("acme"):
        return list(IdempotencyRecord.objects.filter(key=key))


def writer(live, email: str = "member@acme.test", scope: str = "crm.read crm.write", **metadata):
    client, browser = signed_in(acme(live), email, **metadata)
    return client, browser, obtain_tokens(browser, client, scope=scope)


def note_args(body: str) -> dict:
    return {"contact_id": a_contact(), "body": body}


def test_write_tools_advertise_the_key_and_read_tools_do_not(live):
    _, _, tokens = writer(live)
    listed = modern_request(live.tenant_url("acme", "mcp"), "tools/list", token=tokens["access_token"])
    tools = {t["name"]: t for t in listed.json()["result"]["tools"]}
    assert tools["crm_create_note"]["_meta"][IDEMPOTENCY_TOOL_META]["metaKey"] == IDEMPOTENCY_META_KEY
    assert tools["crm_update_contact"]["_meta"][IDEMPOTENCY_TOOL_META]["retentionSeconds"] > 0
    assert IDEMPOTENCY_TOOL_META not in tools["crm_search_contacts"]["_meta"]


def test_a_response_lost_after_commit_then_a_retry_leaves_one_row_and_the_same_result(live):
    _, _, tokens = writer(live)
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"lost-{uuid.uuid4().hex}"
    call_and_hang_up(url, tokens["access_token"], "crm_create_note", note_args(body), key)
    deadline = time.monotonic() + 20
    while not notes_with(body):  # the server commits although nobody reads its answer
        assert time.monotonic() < deadline, "the hung-up call never committed"
        time.sleep(0.05)
    [first] = notes_with(body)
    retried = result_of(keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key))
    assert retried["isError"] is False and retried["structuredContent"]["id"] == first
    assert retried["_meta"][IDEMPOTENT_REPLAY_META] is True
    assert notes_with(body) == [first]
    [record] = records(key)
    assert record.state == "done" and record.result["structuredContent"]["id"] == first


def test_a_client_id_of_255_characters_keeps_its_key(live, settings, document_server, unique):
    """A CIMD client's id is its document's URL, up to DOT's 255 characters: its keyed write applies
    and its retry replays, like any client's."""
    host = f"client-{unique}.example.test"
    prefix, suffix = f"https://{host}/", "/client.json"
    path = "/" + "p" * (255 - len(prefix) - len(suffix)) + suffix
    client_id = f"https://{host}{path}"
    assert len(client_id) == 255
    document_server.documents[path] = json.dumps(
        {
            "client_id": client_id,
            "client_name": "Long CIMD client",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    ).encode()
    settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS = {host: document_server.url}
    browser = signed_in_browser(acme(live), "member@acme.test")
    tokens = obtain_tokens(browser, Client(acme(live), client_id), scope="crm.read crm.write")
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"long-client-{uuid.uuid4().hex}"
    first = result_of(keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key))
    assert first["isError"] is False, first
    again = result_of(keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key))
    assert again["_meta"][IDEMPOTENT_REPLAY_META] is True
    assert again["structuredContent"]["id"] == first["structuredContent"]["id"]
    assert len(notes_with(body)) == 1
    [record] = records(key)
    assert record.client_id == client_id and record.state == "done"


def test_retries_after_an_expired_token_and_a_refresh_apply_once(live):
    client, _, tokens = writer(live)
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"refresh-{uuid.uuid4().hex}"
    with schema_context("acme"):
        checksum = hashlib.sha256(tokens["access_token"].encode()).hexdigest()
        AccessToken.objects.filter(token_checksum=checksum).update(expires=timezone.now() - timedelta(seconds=1))
    expired = keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key)
    assert expired.status_code == 401 and 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert notes_with(body) == [] and records(key) == []  # the failed call stored nothing

    renewed = refresh(client, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    second_token = renewed.json()["access_token"]
    first = result_of(keyed_call(url, second_token, "crm_create_note", note_args(body), key))
    assert first["isError"] is False and IDEMPOTENT_REPLAY_META not in (first.get("_meta") or {})

    third_token = refresh(client, renewed.json()["refresh_token"]).json()["access_token"]  # and again
    again = result_of(keyed_call(url, third_token, "crm_create_note", note_args(body), key))
    assert again["structuredContent"] == first["structuredContent"] and again["_meta"][IDEMPOTENT_REPLAY_META]
    assert notes_with(body) == [first["structuredContent"]["id"]]


def test_a_retry_after_a_step_up_applies_once(live):
    client, browser, tokens = writer(live, scope="crm.read")
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"stepup-{uuid.uuid4().hex}"
    refused = keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key)
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert records(key) == [] and notes_with(body) == []

    stepped = obtain_tokens(browser, client, scope="crm.read crm.write")["access_token"]
    results = [result_of(keyed_call(url, stepped, "crm_create_note", note_args(body), key)) for _ in range(3)]
    assert [r["isError"] for r in results] == [False] * 3
    assert len({r["structuredContent"]["id"] for r in results}) == 1
    assert notes_with(body) == [results[0]["structuredContent"]["id"]]


def test_ten_concurrent_duplicates_apply_once(live):
    _, _, tokens = writer(live)
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"burst-{uuid.uuid4().hex}"
    args = note_args(body)
    barrier = threading.Barrier(10)

    def one(_: int) -> dict:
        barrier.wait()
        return result_of(keyed_call(url, tokens["access_token"], "crm_create_note", args, key))

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one, range(10)))
    assert [r["isError"] for r in results] == [False] * 10
    ids = {r["structuredContent"]["id"] for r in results}
    assert len(ids) == 1 and notes_with(body) == list(ids)
    assert sum(1 for r in results if (r.get("_meta") or {}).get(IDEMPOTENT_REPLAY_META)) == 9
    assert len(records(key)) == 1


def test_a_key_reused_with_other_arguments_is_refused(live):
    _, _, tokens = writer(live)
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"reuse-{uuid.uuid4().hex}"
    assert (
        result_of(keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key))["isError"] is False
    )
    other = keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body + " (edited)"), key)
    assert other.status_code == 400
    error = other.json()["error"]
    assert error["data"] == {"class": "IDEMPOTENCY_KEY_REUSED", "retryable": False}
    assert notes_with(body + " (edited)") == [] and len(notes_with(body)) == 1
    # the same key on another tool, or without a key, is a different call
    other_tool = keyed_call(
        url, tokens["access_token"], "crm_update_contact", {"contact_id": a_contact(), "phone": "+1 555 0100"}, key
    )
    assert result_of(other_tool)["isError"] is False
    malformed = keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), "bad key\n")
    assert malformed.status_code == 400 and malformed.json()["error"]["data"]["class"] == "IDEMPOTENCY_KEY_INVALID"


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        # pg_locks is live (pg_stat_activity would be a snapshot taken once per transaction); only
        # waits on this test's own lock count (other sessions on the server have their own)
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("channel", ["http", "tool_result"])
def test_a_membership_ended_between_the_check_and_the_commit_writes_nothing(live, channel):
    email = f"leaver-{uuid.uuid4().hex[:8]}@acme.test"
    membership, _ = add_user(slug="acme", email=email, password=PASSWORD, role="member")
    metadata = {"mcp_challenge_channel": channel} if channel == "tool_result" else {}
    if channel == "tool_result":
        metadata["redirect_uris"] = ["https://app.example/cb"]
        metadata["application_type"] = "web"
    client, browser = signed_in(acme(live), email, **metadata)
    token = obtain_tokens(browser, client, scope="crm.read crm.write")["access_token"]
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"leaver-{uuid.uuid4().hex}"
    args = note_args(body)
    outcome: dict = {}

    with transaction.atomic():
        # hold the membership row: the call passes mcp_tools.auth.authenticate (a plain read), then
        # waits in tenants.guard.tenant_write for this lock, inside its write transaction
        Membership.objects.select_for_update().get(pk=membership.pk)
        worker = threading.Thread(target=lambda: outcome.update(r=keyed_call(url, token, "crm_create_note", args, key)))
        worker.start()
        deadline = time.monotonic() + 20
        while _waiting_on_a_lock() == 0:
            assert time.monotonic() < deadline, f"the call never reached the write guard: {outcome}"
            time.sleep(0.02)
        Membership.objects.filter(pk=membership.pk).update(is_active=False)  # ended, committed on exit
    worker.join(30)
    response = outcome["r"]
    if channel == "http":
        assert response.status_code == 403, response.text
        assert response.json()["error"]["data"]["class"] == "TENANT_MISMATCH"
    else:  # the refusal as a tool result, which may carry the challenge
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert result["isError"] is True and result["_meta"]["mcp/error"]["class"] == "TENANT_MISMATCH"
    assert notes_with(body) == [] and records(key) == []

    # back in the workspace with a fresh token: the same key is a normal call, applied once
    Membership.objects.filter(pk=membership.pk).update(is_active=True)
    browser = Browser(acme(live), email)
    browser.login()
    fresh = obtain_tokens(browser, client, scope="crm.read crm.write")["access_token"]
    done = result_of(keyed_call(url, fresh, "crm_create_note", args, key))
    assert done["isError"] is False and IDEMPOTENT_REPLAY_META not in (done.get("_meta") or {})
    assert notes_with(body) == [done["structuredContent"]["id"]]


def test_a_failed_call_stores_nothing_and_the_retry_is_a_normal_call(live):
    _, _, tokens = writer(live)
    url, key = live.tenant_url("acme", "mcp"), uuid.uuid4().hex
    missing = result_of(
        keyed_call(url, tokens["access_token"], "crm_create_note", {"contact_id": 10**8, "body": "x"}, key)
    )
    assert missing["isError"] is True and records(key) == []
    body = f"after-{uuid.uuid4().hex}"
    # not a "reuse": nothing was stored for the failed call, so other arguments are fine now
    done = result_of(keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key))
    assert done["isError"] is False and len(notes_with(body)) == 1


def test_expired_keys_no_longer_answer_and_are_purged(live, settings):
    from mcp_tools.tasks import purge_idempotency_records_in_tenant

    _, _, tokens = writer(live)
    url, key, body = live.tenant_url("acme", "mcp"), uuid.uuid4().hex, f"expire-{uuid.uuid4().hex}"
    assert (
        result_of(keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key))["isError"] is False
    )
    with schema_context("acme"):
        IdempotencyRecord.objects.filter(key=key).update(created_at=timezone.now() - timedelta(days=2))
    # past the retention the key is new again: the call runs (a second note) and records afresh
    again = result_of(keyed_call(url, tokens["access_token"], "crm_create_note", note_args(body), key))
    assert again["isError"] is False and len(notes_with(body)) == 2
    with schema_context("acme"):
        IdempotencyRecord.objects.filter(key=key).update(created_at=timezone.now() - timedelta(days=2))
        fresh_key = uuid.uuid4().hex
        IdempotencyRecord.objects.create(
            user_id=1,
            client_id="c",
            tool_name="crm_create_note",
            key=fresh_key,
            arguments_hash="0" * 64,
            state="done",
            result={},
            created_at=timezone.now(),
            updated_at=timezone.now(),
        )
    assert purge_idempotency_records_in_tenant("acme") >= 1
    assert records(key) == [] and len(records(fresh_key)) == 1
    with schema_context("acme"):
        IdempotencyRecord.objects.filter(key=fresh_key).delete()


@pytest.mark.django_db
def test_the_purge_has_a_beat_row_created_after_migrate():
    from django_celery_beat.models import PeriodicTask

    row = PeriodicTask.objects.get(task="mcp_tools.purge_idempotency_records_everywhere")
    assert row.enabled and row.crontab.minute == "41"


def test_an_upstream_call_still_running_is_in_progress_and_a_dead_claim_is_taken_over(live, settings):
    from accounts.models import User
    from mcp_tools.idempotency import arguments_hash

    client, _, tokens = writer(live, scope="connections")
    url, key = live.tenant_url("acme", "mcp"), uuid.uuid4().hex
    args = {"provider": "no-such-provider", "contact_id": 1, "body": "x"}
    now = timezone.now()
    with schema_context("acme"):
        IdempotencyRecord.objects.create(
            user_id=User.objects.get(email="member@acme.test").pk,
            client_id=client.client_id,
            tool_name="connector_crm_create_note",
            key=key,
            arguments_hash=arguments_hash(args),
            state="pending",
            created_at=now,
            updated_at=now,
        )
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3  # the live server runs in this process
    busy = keyed_call(url, tokens["access_token"], "connector_crm_create_note", args, key)
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"]["data"] == {"class": "IDEMPOTENCY_IN_PROGRESS", "retryable": True}
    assert [r.state for r in records(key)] == ["pending"]

    with schema_context("acme"):  # the claimant died an hour ago: the next retry runs the call itself
        IdempotencyRecord.objects.filter(key=key).update(updated_at=now - timedelta(hours=1))
    taken = result_of(keyed_call(url, tokens["access_token"], "connector_crm_create_note", args, key))
    assert taken["isError"] is True and "no-such-provider" in taken["content"][0]["text"]
    assert records(key) == []  # a failed call stores nothing, not even its claim
