"""Hostile provider answers (``connectors.answers``): whatever a provider's token, userinfo or
revocation endpoint answers (deep nesting, wrong types, NaN, huge or negative ``expires_in``,
control characters, NUL and unpaired surrogates, non-UTF-8 bytes, any status and headers), the result
is a validated token or a classified ``ConnectorError``; nothing unvalidated is stored, the account
never stays ``refreshing``, a rotated refresh token that did arrive is kept, and the job goes on with
the next account. Fuzzed with hypothesis against a loopback stub provider (the style of
``tests/test_fuzz_edges.py``: bounded examples, ``FUZZ_EXAMPLES`` for a deeper run)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from hypothesis import given
from hypothesis import strategies as st

from connectors import answers, clock, tokens, upstream
from connectors.errors import ConnectorError
from connectors.models import ConnectedAccount, Credential, Provider, ProviderBreaker
from connectors.services import add_provider, disconnect
from connectors.tasks import refresh_expiring_in_tenant
from tests.conftest import PASSWORD
from tests.connectors.stub_provider import REVOKE, TOKEN, USERINFO, Answer, StubProvider, stub_provider
from tests.fuzz_strategies import deep, deep_object, json_value, printable
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, signed_in
from tests.support.fuzz import FUZZ

pytestmark = pytest.mark.timeout(600)

PRINTABLE_TOKEN = re.compile(r"[\x21-\x7e]+")
GOOD_TOKEN_ANSWER = json.dumps(
    {"access_token": "at-good", "refresh_token": "rt-good", "token_type": "Bearer", "expires_in": 3600}
).encode()


def attempt(call: Callable[[], Any]) -> tuple[bool, Any]:
    """Whether ``call`` succeeded (a ``ConnectorError`` is a refusal), and what it returned."""
    try:
        return True, call()
    except ConnectorError:
        return False, None


def fuzz_answers(stub: StubProvider, path: str, account: ConnectedAccount | None = None):
    """Make ``check(found)`` a fuzzer over the provider's answers at ``path``: each example answered
    with ``found``, the account reset first, ``check`` run in tenant acme."""

    def fuzzer(check: Callable[[Answer], None]) -> Callable[[], None]:
        @FUZZ
        @given(found=answer)
        def run(found: Answer) -> None:
            if account is not None:
                reset(account)
            stub.answer(path, found)
            with schema_context("acme"):
                check(found)

        return run

    return fuzzer


def stub_provider_in(stub: StubProvider, slug: str = "acme", *, key: str | None = None) -> Provider:
    key = key or f"stub-{uuid.uuid4().hex[:8]}"
    with schema_context(slug):
        provider, _ = add_provider(
            key=key,
            client_id="stub-client",
            client_secret="stub-secret",  # test-only
            endpoints={
                "authorization_endpoint": f"{stub.url}/authorize",
                "token_endpoint": stub.url + TOKEN,
                "userinfo_endpoint": stub.url + USERINFO,
                "revocation_endpoint": stub.url + REVOKE,
            },
        )
    return provider


def account_at(provider: Provider, slug: str = "acme", email: str = "member@acme.test") -> ConnectedAccount:
    from accounts.models import User

    with schema_context(slug):
        account = ConnectedAccount.objects.create(user=User.objects.get(email=email), provider=provider)
        Credential.objects.create(account=account, access_token="at-old", refresh_token="rt-old")
    reset(account, slug)
    return account


def reset(account: ConnectedAccount, slug: str = "acme") -> None:
    """Expired, active, holding the old tokens; the tenant's breakers closed (so every example
    reaches the provider)."""
    with schema_context(slug):
        ProviderBreaker.objects.all().delete()
        ConnectedAccount.objects.filter(pk=account.pk).update(
            status="active", status_reason="", refreshing_since=None, refresh_failures=0,
            refresh_failing_since=None, next_refresh_at=None, revocation_pending=False,
            expires_at=timezone.now() - timedelta(seconds=5), token_lifetime_seconds=None,
        )  # fmt: skip
        Credential.objects.update_or_create(
            account_id=account.pk, defaults={"access_token": "at-old", "refresh_token": "rt-old"}
        )


@pytest.fixture
def stub() -> Iterator[StubProvider]:
    with stub_provider() as server:
        yield server


# --- the answer from the issue, end to end over MCP -------------------------------------------------


def test_a_garbage_refresh_answer_is_a_connector_result_and_leaves_the_account_usable(live, stub):
    """200 with wrong types and JSON nested 3,000 deep: the agent gets a classified, retryable
    ``CONNECTOR_UNAVAILABLE``, not "The tool failed", and the account is not left ``refreshing``."""
    provider = stub_provider_in(stub)
    account = account_at(provider)
    garbage = b'{"access_token": 42, "expires_in": "soon", "scope": {"a": 1}, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    stub.answer(TOKEN, Answer(body=garbage))
    client, member = signed_in(live.tenant("acme"), "member@acme.test")
    token = obtain_tokens(member, client, scope="connections")["access_token"]
    response = call(live.tenant_url("acme", "mcp"), token, "connector_profile", {"provider": provider.key})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["isError"] is True, result
    assert result["structuredContent"] == {
        "class": "CONNECTOR_UNAVAILABLE", "provider": provider.key, "reason": "invalid_response", "retryable": True,
    }  # fmt: skip
    with schema_context("acme"):
        after = ConnectedAccount.objects.get(pk=account.pk)
        credential = Credential.objects.get(account=after)
    assert (after.status, after.refreshing_since) == ("active", None)
    assert (credential.access_token, credential.refresh_token) == ("at-old", "rt-old")
    stub.answer(TOKEN, Answer(body=GOOD_TOKEN_ANSWER))  # the provider is fixed: the next call works
    stub.answer(USERINFO, Answer(body=b'{"sub": "fixed"}'))
    again = call(live.tenant_url("acme", "mcp"), token, "connector_profile", {"provider": provider.key}).json()
    assert again["result"]["isError"] is False and again["result"]["structuredContent"]["profile"] == {"sub": "fixed"}


def test_a_rotated_refresh_token_in_an_unusable_answer_is_kept(live, stub):
    provider = stub_provider_in(stub)
    account = account_at(provider)
    stub.answer(TOKEN, Answer(body=b'{"refresh_token": "rt-rotated", "access_token": ["not", "a", "token"]}'))
    with schema_context("acme"), pytest.raises(ConnectorError) as error:
        tokens.refresh_account(account_id=account.pk, force=True)
    assert error.value.code == "invalid_response" and error.value.transient
    with schema_context("acme"):
        after = ConnectedAccount.objects.get(pk=account.pk)
        credential = Credential.objects.get(account=after)
    assert (after.status, after.status_reason) == ("active", "")  # nothing lost: not "unconfirmed"
    assert (credential.refresh_token, credential.access_token) == ("rt-rotated", "at-old")


def test_the_job_goes_on_with_the_next_account_after_a_garbage_answer(live, unique):
    from tenants.services import add_user, create_tenant

    slug = f"hostile_{unique}"
    create_tenant(slug=slug, name="Hostile answers")
    email = f"member-{unique}@hostile.test"
    add_user(slug=slug, email=email, password=PASSWORD, role="member")
    with stub_provider() as bad, stub_provider() as good:
        bad.answer(TOKEN, Answer(body=b"\x00\xff<html>not json" * 100))
        good.answer(TOKEN, Answer(body=GOOD_TOKEN_ANSWER))
        broken = account_at(stub_provider_in(bad, slug), slug, email)
        other_user = f"other-{unique}@hostile.test"
        add_user(slug=slug, email=other_user, password=PASSWORD, role="member")
        fine = account_at(stub_provider_in(good, slug), slug, other_user)
        counts = refresh_expiring_in_tenant(slug)
    assert counts["backoff"] == 1 and counts["refreshed"] == 1, counts
    with schema_context(slug):
        failed = ConnectedAccount.objects.get(pk=broken.pk)
        refreshed = ConnectedAccount.objects.get(pk=fine.pk)
    assert (failed.status, failed.refresh_failures) == ("active", 1) and failed.next_refresh_at > clock.now()
    assert (refreshed.status, refreshed.refresh_count, refreshed.token_lifetime_seconds) == ("active", 1, 3600)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3600, 3600), ("3600", 3600), (0, 10), (-5, 10), (10**30, 400 * 86400), (1e308, 400 * 86400), (59.9, 59),
     (None, None)],
)  # fmt: skip
def test_expires_in_is_clamped_into_a_sane_range(value, expected):
    assert answers.expires_in(value) == expected


@pytest.mark.parametrize("value", [True, {"s": 1}, [1], "soon", "1e3", ""])
def test_expires_in_of_the_wrong_type_is_refused(value):
    with pytest.raises(ValueError):
        answers.expires_in(value)


# --- fuzzing ------------------------------------------------------------------------------------------

TOKEN_FIELDS = ("access_token", "refresh_token", "token_type", "expires_in", "scope", "id_token", "error", "ok")
token_like = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    st.sampled_from(["Bearer", "bearer", "DPoP", "invalid_grant", "eyJh.eyJz.c2ln"]),
)
field_value = st.one_of(json_value, token_like, st.integers(min_value=-(10**40), max_value=10**40))
token_object = st.one_of(
    st.dictionaries(st.sampled_from(TOKEN_FIELDS), field_value, max_size=8),
    st.fixed_dictionaries(
        {"access_token": token_like},
        optional={name: field_value for name in TOKEN_FIELDS if name != "access_token"},
    ),
)
# a usable answer with one field made hostile (or dropped): the common shape of a broken provider
VALID = {"access_token": "at-new", "refresh_token": "rt-new", "token_type": "Bearer", "expires_in": 90, "scope": "a b"}
one_bad_field = st.builds(
    lambda name, value, drop: {k: v for k, v in {**VALID, name: value}.items() if k != drop},
    st.sampled_from(TOKEN_FIELDS),
    field_value,
    st.one_of(st.none(), st.sampled_from(TOKEN_FIELDS)),
)
raw_body = st.one_of(
    one_bad_field.map(lambda o: json.dumps(o).encode()),
    one_bad_field.map(lambda o: json.dumps(o).encode()),
    token_object.map(lambda o: json.dumps(o).encode()),
    json_value.map(lambda v: json.dumps(v).encode()),
    deep,
    deep_object,
    st.binary(max_size=300),
    st.sampled_from([b"", b"NaN", b'{"access_token": "a", "expires_in": NaN}', b'{"expires_in": Infinity}', b"{"]),
    st.builds(lambda n: b'{"access_token": "' + b"A" * n + b'"}', st.integers(16_000, 70_000)),
)
status = st.one_of(st.just(200), st.just(200), st.sampled_from([400, 401, 403, 429, 500, 503]), st.integers(200, 599))
headers = st.dictionaries(
    st.sampled_from(["Retry-After", "Content-Type", "Content-Encoding", "Cache-Control"]),
    st.one_of(printable.filter(bool),
              st.sampled_from(["60", "-1", "1e9", "NaN", "Wed, 21 Oct 2015 07:28:00 GMT", "gzip", "application/json"])),
    max_size=3,
)  # fmt: skip
answer = st.builds(Answer, status=status, body=raw_body, headers=headers)


DECODED = {"gzip", "x-gzip", "deflate", "br", "zstd"}  # encodings urllib3 decodes (or fails to)


def valid_refresh_token_in(found: Answer) -> str | None:
    """The rotated refresh token the answer carries, as far as anyone could read it: a 200 whose body
    parses within the bounds (``answers.parse_json``) and is not a refusal."""
    encodings = {e.strip().lower() for e in found.headers.get("Content-Encoding", "").split(",")}
    if found.status != 200 or encodings & DECODED:
        return None
    try:
        data = answers.parse_json(found.body, max_bytes=answers.MAX_TOKEN_ANSWER_BYTES)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("ok") is False or data.get("error") is not None:
        return None
    value = data.get("refresh_token")
    return value if isinstance(value, str) and len(value) <= 16384 and PRINTABLE_TOKEN.fullmatch(value) else None


def storable(value: str) -> bool:
    return "\x00" not in value and not re.search("[\ud800-\udfff]", value)


def test_fuzz_token_answers(live, stub, settings):
    settings.CONNECTORS_REFRESH_ATTEMPTS = 1
    settings.CONNECTORS_HTTP_TIMEOUT_SECONDS = 5
    provider = stub_provider_in(stub)
    account = account_at(provider)

    @fuzz_answers(stub, TOKEN, account)
    def check(found: Answer) -> None:
        accepted, access = attempt(lambda: tokens.refresh_account(account_id=account.pk, force=True))
        after = ConnectedAccount.objects.get(pk=account.pk)
        credential = Credential.objects.get(account=after)
        assert after.status in ("active", "needs_reauth"), (after.status, found)
        assert after.refreshing_since is None
        rotated = valid_refresh_token_in(found)
        if accepted:  # everything stored is a validated value
            assert credential.access_token == access and PRINTABLE_TOKEN.fullmatch(access), found
            assert after.expires_at is None or 10 <= after.token_lifetime_seconds <= 400 * 86400
            assert all(storable(s) for s in after.granted_scopes)
        assert credential.refresh_token == (rotated or "rt-old"), found  # kept when it arrived, else untouched

    check()


def test_fuzz_userinfo_answers(live, stub):
    provider = stub_provider_in(stub)

    @fuzz_answers(stub, USERINFO)
    def check(found: Answer) -> None:
        accepted, claims = attempt(lambda: upstream.userinfo(provider, "at-old"))
        if not accepted:
            return
        with transaction.atomic():  # what the connect flow stores of it, PostgreSQL accepts
            for value in claims.values():
                items = value if isinstance(value, list) else [value]
                for item in items:
                    assert isinstance(item, (str, int, bool)), claims
                    if isinstance(item, str):
                        assert storable(item)
                        Provider.objects.filter(pk=provider.pk).update(display_name=item[:200])
            json.dumps(claims)
            transaction.set_rollback(True)

    check()


def test_fuzz_revocation_answers(live, stub):
    provider = stub_provider_in(stub)
    account = account_at(provider)

    @fuzz_answers(stub, REVOKE, account)
    def check(found: Answer) -> None:
        revoked, _ = attempt(lambda: upstream.revoke(provider, "rt-old", "refresh_token"))
        assert found.status == 200 or not revoked  # only a 200 is success; the body is never read
        _, outcome = disconnect(user_id=account.user_id, provider_key=provider.key)
        after = ConnectedAccount.objects.get(pk=account.pk)
        kept = Credential.objects.filter(account_id=account.pk).exists()
        assert after.status == "revoked" and after.revocation_pending == (not revoked) == kept, (outcome, found)

    check()
