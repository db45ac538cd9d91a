"""One function per lifecycle property. Each drives the deployment over HTTP (the official ``mcp``
client where a client's behaviour is the point, raw requests where the exact refusal is) and raises
``CheckFailed`` with a reason that never contains a token. ``critical`` marks a security property
broken (something was allowed that must not be); a happy path that does not work is a failure too,
but not a critical one. ``CheckSkipped`` says why a property cannot be checked on this deployment
(the line is ``[skip]``, never ``[ok]``)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from django.utils import timezone
from django_tenants.utils import schema_context
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from oauth2_provider.models import AccessToken, RefreshToken

from connectors.models import ConnectedAccount, Credential
from connectors.services import add_provider
from crm.models import Contact, Note
from declarations.idempotency import IDEMPOTENCY_META_KEY, IDEMPOTENT_REPLAY_META
from identity.errors import IdentityError
from identity.scim.tokens import issue_token as issue_scim_token
from identity.services import add_provider as add_identity_provider
from lifecycle.idp import ThrowawayIdP
from lifecycle.wire import call, revoke, sdk_call
from lifecycle.world import World
from mcp_tools.models import ToolPolicy
from mcp_tools.services import ensure_policies, save_policy
from oauth.grant_types import JWT_BEARER
from oauth.validators import checksum
from probe.mcp_client import MemoryStorage, provider
from probe.oauth_flow import (
    Browser,
    authorize_url,
    exchange,
    hidden_inputs,
    obtain_tokens,
    pkce_pair,
    redirect_params,
    refresh,
    register,
)
from tenants.services import add_user, deactivate_tenant, remove_user

# a redirect URI host the default challenge-channel rules map to the tool-result channel (README,
# "Auth failures"); never contacted: redirects are read, not followed
OPENAI_LIKE_REDIRECT = "https://chatgpt.com/connector_platform_oauth_redirect"
# the deployment's Celery worker revokes a departed member's upstream accounts when the event is queued
UPSTREAM_REVOCATION_SECONDS = 60


class CheckFailed(Exception):
    def __init__(self, reason: str, *, critical: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.critical = critical


class CheckSkipped(Exception):
    """The deployment cannot take part in this check (its configuration, not a hole): ``[skip]``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def require(condition: object, reason: str) -> None:
    """A security property: failing it is critical."""
    if not condition:
        raise CheckFailed(reason, critical=True)


def works(condition: object, reason: str) -> None:
    """Something that must work for the check to mean anything: failing it is not critical."""
    if not condition:
        raise CheckFailed(reason, critical=False)


def _scopes(value: str | None) -> set[str]:
    return set((value or "").split())


def _note_exists(slug: str, body: str) -> bool:
    with schema_context(slug):
        return Note.objects.filter(body=body).exists()


# --- the six lines of the contract -------------------------------------------------------------------
def challenge_via_tool_result(world: World) -> None:
    """A client registered with an OpenAI-like redirect gets scope challenges as an ``isError`` tool
    result carrying ``_meta["mcp/www_authenticate"]``, and the refused write does not happen."""
    url, marker = world.mcp(world.a), f"lifecycle {world.run} challenge"
    oauth, _ = provider(url, world.browser(world.a, world.member), scope="crm.read", redirect_uri=OPENAI_LIKE_REDIRECT)
    contact = world.contact_ids(world.a)[0]
    result = sdk_call(url, oauth, "crm_create_note", {"contact_id": contact, "body": marker})
    require(result.is_error, "a crm.read token wrote a note")
    require(not _note_exists(world.a, marker), "the refused note was written")
    challenge = (result.meta or {}).get("mcp/www_authenticate")
    works(challenge, "no _meta['mcp/www_authenticate'] in the tool result (the client got the HTTP channel)")
    text = " ".join(challenge) if isinstance(challenge, list) else str(challenge)
    works('error="insufficient_scope"' in text, "the challenge does not say insufficient_scope")
    works("resource_metadata=" in text, "the challenge has no resource_metadata")
    works("crm.write" in text and "crm.read" in text, "the challenge's scope is not granted + needed")


def code_pkce_exchange(world: World) -> None:
    """The official client completes discovery, registration, PKCE and consent; by hand: an exchange
    with the wrong verifier, a replayed code and an authorization without PKCE are refused."""
    url = world.mcp(world.a)
    browser = world.browser(world.a, world.member)
    oauth, consent = provider(url, browser, scope="crm.read")
    result = sdk_call(url, oauth, "crm_search_contacts", {})
    works(not result.is_error and result.structured_content["contacts"], "the official client's call failed")
    works(consent.authorize_urls, "the official client never asked for authorization")
    sent = {k: v[0] for k, v in parse_qs(urlsplit(consent.authorize_urls[0]).query).items()}
    require(sent.get("code_challenge_method") == "S256" and sent.get("code_challenge"), "no S256 PKCE in the flow")

    client = register(world.tenant(world.a), client_name=f"lifecycle {world.run} pkce")
    verifier, challenge = pkce_pair()
    code = redirect_params(browser.authorize(authorize_url(client, scope="crm.read", challenge=challenge))).get("code")
    works(code, "no authorization code")
    require(exchange(client, code, pkce_pair()[0]).status_code == 400, "a wrong PKCE verifier was accepted")
    good = exchange(client, code, verifier)
    works(good.status_code == 200 and good.json().get("token_type", "").lower() == "bearer", "the exchange failed")
    require(exchange(client, code, verifier).status_code == 400, "a spent authorization code was accepted again")
    no_pkce = authorize_url(client, scope="crm.read", challenge="", state="bare")
    no_pkce = no_pkce.replace("&code_challenge=&code_challenge_method=S256", "")
    works("code_challenge" not in no_pkce, "could not build an authorization request without PKCE")
    bare = browser.authorize(no_pkce)
    location = bare.headers.get("location", "") if bare.status_code == 302 else ""
    require("code=" not in location, "an authorization without PKCE got a code")


def scope_validation_at_execution(world: World) -> None:
    """Scopes are checked when the tool runs: a crm.read token may search but not write, and when
    the tenant's scope matrix changes the same token is refused at its next call."""
    _, tokens = world.tokens(world.a, world.member, "crm.read")
    url, token = world.mcp(world.a), tokens["access_token"]
    works(call(url, token, "crm_search_contacts").ok, "a crm.read search failed")
    marker = f"lifecycle {world.run} scope"
    refused = call(url, token, "crm_create_note", {"contact_id": world.contact_ids(world.a)[0], "body": marker})
    require(not refused.ok and not _note_exists(world.a, marker), "a crm.read token wrote a note")
    works(refused.status == 403 and refused.field("error") == "insufficient_scope", f"got {refused.describe()}")
    works(_scopes(refused.field("scope")) >= {"crm.read", "crm.write"}, "the challenge's scope is not granted + needed")

    with schema_context(world.a):
        ensure_policies()
        policy = ToolPolicy.objects.get(tool_name="crm_search_contacts")
        before = policy.scopes
        policy.scopes = "crm.write"
        save_policy(policy=policy, changed_by_id=None)
    try:
        now = call(url, token, "crm_search_contacts")
        require(not now.ok, "the same token still searched after the matrix started to require crm.write")
        works(now.field("error") == "insufficient_scope", f"after the matrix change: {now.describe()}")
    finally:
        with schema_context(world.a):
            policy.scopes = before
            save_policy(policy=policy, changed_by_id=None)
    works(call(url, token, "crm_search_contacts").ok, "the search failed after the matrix was restored")


def refresh_rotation(world: World) -> None:
    """The official client refreshes an expired access token by itself; the refresh token rotates
    and the presented one is retired at the server."""
    url, storage = world.mcp(world.a), MemoryStorage()
    oauth, consent = provider(url, world.browser(world.a, world.member), storage=storage, scope="crm.read")
    works(not sdk_call(url, oauth, "crm_search_contacts", {}).is_error, "the first call failed")
    old = storage.tokens
    with schema_context(world.a):  # as if the access token's lifetime had passed
        expired = AccessToken.objects.filter(token_checksum=checksum(old.access_token)).update(
            expires=timezone.now() - timedelta(seconds=5)
        )
    works(expired == 1, "the access token was not found at the server")
    oauth.context.token_expiry_time = 1.0  # the client learns it from its clock
    works(not sdk_call(url, oauth, "crm_search_contacts", {}).is_error, "the call after the refresh failed")
    new = storage.tokens
    works(len(consent.authorize_urls) == 1, "the client re-authorized instead of refreshing")
    require(new.refresh_token != old.refresh_token, "the refresh token was not rotated")
    require(new.access_token != old.access_token, "no new access token")
    with schema_context(world.a):
        retired = RefreshToken.objects.filter(token_checksum=checksum(old.refresh_token)).values_list(
            "revoked", flat=True
        )
        require(list(retired) and retired[0] is not None, "the presented refresh token was not retired")
    require(not call(url, old.access_token, "crm_search_contacts").ok, "the expired access token still works")


def revoked_token_path(world: World) -> None:
    """RFC 7009: a revoked access token is refused at the next call with an ``invalid_token``
    challenge; a revoked refresh token cannot be refreshed."""
    client, tokens = world.tokens(world.a, world.member, "crm.read")
    url = world.mcp(world.a)
    works(call(url, tokens["access_token"], "crm_search_contacts").ok, "the call before revocation failed")
    works(revoke(client, tokens["access_token"], "access_token") == 200, "revocation was not accepted")
    after = call(url, tokens["access_token"], "crm_search_contacts")
    require(not after.ok, "a revoked access token still works")
    works(after.status == 401 and after.field("error") == "invalid_token", f"got {after.describe()}")
    works("resource_metadata=" in after.challenge, "the 401 challenge has no resource_metadata")
    works(revoke(client, tokens["refresh_token"], "refresh_token") == 200, "revocation was not accepted")
    require(refresh(client, tokens["refresh_token"]).status_code != 200, "a revoked refresh token was refreshed")


def identity_propagation(world: World) -> None:
    """The tool runs as the token's user in the token's tenant only: it reads A's contacts, the note is
    written in A's schema with that user as author, nothing lands in B (where the same user is also a
    member), objects of B are not found from A, and no token appears in a result."""
    url, storage = world.mcp(world.a), MemoryStorage()
    oauth, _ = provider(url, world.browser(world.a, world.member), storage=storage, scope="crm.read crm.write")
    info = sdk_call(url, oauth, "crm_search_contacts", {})
    works(not info.is_error and info.structured_content["contacts"], "the search failed")
    companies = {c["company"] for c in info.structured_content["contacts"]}  # each tenant's contacts name it
    require(companies == {world.a}, "the tool read another tenant's contacts")
    marker = f"lifecycle {world.run} identity"
    contact = world.contact_ids(world.a)[0]
    written = sdk_call(url, oauth, "crm_create_note", {"contact_id": contact, "body": marker})
    works(not written.is_error, "the note could not be written")
    with schema_context(world.a):
        authors = list(Note.objects.filter(body=marker).values_list("author_user_id", flat=True))
    require(authors == [world.user_id(world.member)], "the note's author is not the token's user")
    require(not _note_exists(world.b, marker), "the note reached the other tenant")
    only_in_b = sorted(set(world.contact_ids(world.b)) - set(world.contact_ids(world.a)))
    works(only_in_b, "no contact id exists only in B")
    foreign = sdk_call(url, oauth, "crm_get_contact", {"contact_id": only_in_b[0]})
    require(foreign.is_error, "a contact id of B was found from A")
    dumped = json.dumps([r.model_dump(mode="json") for r in (info, written, foreign)])
    tokens = storage.tokens
    require(tokens.access_token not in dumped and tokens.refresh_token not in dumped, "a token is in a tool result")


# --- further properties ------------------------------------------------------------------------------
def reuse_revokes_family(world: World) -> None:
    """Once a rotated refresh token's successor has been used, presenting the old one is reuse: it is
    refused and the whole family (the newest access and refresh tokens) is revoked."""
    client, first = world.tokens(world.a, world.member, "crm.read")
    second = refresh(client, first["refresh_token"])
    works(second.status_code == 200, f"the first refresh failed (HTTP {second.status_code})")
    third = refresh(client, second.json()["refresh_token"])
    works(third.status_code == 200, f"the second refresh failed (HTTP {third.status_code})")
    url, newest = world.mcp(world.a), third.json()
    works(call(url, newest["access_token"], "crm_search_contacts").ok, "the newest access token does not work")
    reused = refresh(client, first["refresh_token"])
    require(reused.status_code == 400, f"the reused refresh token got HTTP {reused.status_code}")
    require(not call(url, newest["access_token"], "crm_search_contacts").ok, "the family's access token survived")
    require(refresh(client, newest["refresh_token"]).status_code == 400, "the family's refresh token survived")


def parallel_refreshes(world: World, count: int = 5) -> None:
    """Concurrent refreshes of one refresh token (a client's parallel requests) all get the same new
    pair, and the session goes on: the pair works and refreshes again."""
    client, tokens = world.tokens(world.a, world.member, "crm.read")
    barrier = threading.Barrier(count)

    def one(_: int) -> httpx.Response:
        barrier.wait(timeout=30)
        return refresh(client, tokens["refresh_token"])

    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(one, range(count)))
    statuses = sorted(a.status_code for a in answers)
    works(statuses == [200] * count, f"parallel refreshes answered {statuses}")
    pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
    works(len(pairs) == 1, f"parallel refreshes got {len(pairs)} different pairs")
    access, refresh_token = pairs.pop()
    works(call(world.mcp(world.a), access, "crm_search_contacts").ok, "the shared pair's access token does not work")
    works(refresh(client, refresh_token).status_code == 200, "the session could not refresh again")


def stale_membership(world: World) -> None:
    """A user removed from the tenant is refused at the very next call and cannot refresh."""
    client, tokens = world.tokens(world.a, world.leaver, "crm.read")
    url = world.mcp(world.a)
    works(call(url, tokens["access_token"], "crm_search_contacts").ok, "the call before removal failed")
    remove_user(slug=world.a, email=world.leaver)
    after = call(url, tokens["access_token"], "crm_search_contacts")
    require(not after.ok, "a removed member's token still works")
    works(after.status in (401, 403), f"got {after.describe()}")
    require(refresh(client, tokens["refresh_token"]).status_code != 200, "a removed member's token was refreshed")


def deactivated_tenant(world: World) -> None:
    """A deactivated tenant refuses its tokens at the next call and its token endpoint refreshes nothing."""
    client, tokens = world.tokens(world.b, world.member, "crm.read")
    url = world.mcp(world.b)
    works(call(url, tokens["access_token"], "crm_search_contacts").ok, "the call before deactivation failed")
    deactivate_tenant(slug=world.b)
    after = call(url, tokens["access_token"], "crm_search_contacts")
    require(not after.ok, "a deactivated tenant's token still works")
    works(after.status == 403, f"got {after.describe()}")
    require(refresh(client, tokens["refresh_token"]).status_code != 200, "a deactivated tenant refreshed a token")


def cross_tenant_replay(world: World) -> None:
    """A token of A presented at B (by a user who is a member of both) is refused, and the other way
    round; A's refresh token means nothing at B's token endpoint."""
    client_a, at_a = world.tokens(world.a, world.member, "crm.read")
    _, at_b = world.tokens(world.b, world.member, "crm.read")
    works(call(world.mcp(world.a), at_a["access_token"], "crm_search_contacts").ok, "A's token fails at A")
    works(call(world.mcp(world.b), at_b["access_token"], "crm_search_contacts").ok, "B's token fails at B")
    a_at_b = call(world.mcp(world.b), at_a["access_token"], "crm_search_contacts")
    require(not a_at_b.ok, "A's token was accepted at B")
    works(a_at_b.status == 401 and a_at_b.field("error") == "invalid_token", f"A at B: {a_at_b.describe()}")
    b_at_a = call(world.mcp(world.a), at_b["access_token"], "crm_search_contacts")
    require(not b_at_a.ok, "B's token was accepted at A")
    works(b_at_a.status == 401, f"B at A: {b_at_a.describe()}")
    elsewhere = httpx.post(
        world.tenant(world.b).url("token/"),
        data={"grant_type": "refresh_token", "refresh_token": at_a["refresh_token"], "client_id": client_a.client_id},
        timeout=30,
    )
    require(elsewhere.status_code != 200, "A's refresh token was refreshed at B")


def admin_demotion(world: World) -> None:
    """An admin's admin-only scope works while they are an admin; once demoted, the same token's
    admin-only scope is dropped at the next call and the destructive tool is refused."""
    _, tokens = world.tokens(world.a, world.admin, "crm.read crm.admin")
    works(_scopes(tokens.get("scope")) >= {"crm.admin"}, "the admin was not granted crm.admin")
    url, token = world.mcp(world.a), tokens["access_token"]
    first, second = world.contact_ids(world.a)[-2:]
    works(call(url, token, "crm_delete_contact", {"contact_id": first}).ok, "the admin could not delete")
    add_user(slug=world.a, email=world.admin, password=None, role="member")
    after = call(url, token, "crm_delete_contact", {"contact_id": second})
    require(not after.ok, "a demoted admin's token still deleted a contact")
    with schema_context(world.a):
        require(Contact.objects.filter(pk=second).exists(), "the contact is gone after the demotion")
    works(after.status == 403 and after.field("error") == "insufficient_scope", f"got {after.describe()}")


def step_up_keeps_grants(world: World) -> None:
    """The official client, refused for a missing scope, re-authorizes with the challenge's scope,
    which keeps what was granted before: the write then works and so do the earlier reads."""
    url, storage = world.mcp(world.a), MemoryStorage()
    oauth, consent = provider(url, world.browser(world.a, world.member), storage=storage, scope="crm.read")
    works(not sdk_call(url, oauth, "crm_search_contacts", {}).is_error, "the first read failed")
    marker = f"lifecycle {world.run} step-up"
    wrote = sdk_call(url, oauth, "crm_create_note", {"contact_id": world.contact_ids(world.a)[0], "body": marker})
    works(not wrote.is_error and _note_exists(world.a, marker), "the write after step-up failed")
    works(len(consent.authorize_urls) == 2, f"{len(consent.authorize_urls)} authorizations instead of 2")
    asked = _scopes(parse_qs(urlsplit(consent.authorize_urls[1]).query).get("scope", [""])[0])
    works(asked >= {"crm.read", "crm.write"}, f"the step-up asked for {sorted(asked)}")
    works(_scopes(storage.tokens.scope) >= {"crm.read", "crm.write"}, "the new token lost crm.read")
    works(not sdk_call(url, oauth, "crm_search_contacts", {}).is_error, "the earlier read fails after step-up")


def connector_lifecycle(world: World) -> None:
    """Tenant B's authorization server as the upstream of tenant A: the member connects their B
    account through the consent pages, a tool in A uses it, an expired upstream token is refreshed
    (rotated at B), the upstream grant revoked at B turns into CONNECTOR_REAUTH_REQUIRED with the
    connect URL, and reconnecting makes the tool work again."""
    a, b = world.tenant(world.a), world.tenant(world.b)
    registered = httpx.post(
        b.url("register/"),
        json={
            "client_name": f"lifecycle {world.run} connector",
            "redirect_uris": [a.url("connections/callback/")],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "application_type": "native",
        },
        timeout=30,
    )
    works(registered.status_code == 201, f"registration at B answered {registered.status_code}")
    client_id, secret = registered.json()["client_id"], registered.json()["client_secret"]
    key = f"upstream-{world.run}"
    with schema_context(world.a):
        add_provider(
            key=key,
            issuer=b.base,
            client_id=client_id,
            client_secret=secret,
            scopes=["crm.read"],
            display_name=f"Lifecycle {world.run} B",
            mcp_endpoint=b.mcp,
        )
    in_a, in_b = world.browser(world.a, world.member), world.browser(world.b, world.member)
    url, storage = world.mcp(world.a), MemoryStorage()
    oauth, _ = provider(url, in_a, storage=storage, scope="connections")

    def search():
        return sdk_call(url, oauth, "connector_crm_search", {"provider": key, "query": ""})

    def expire() -> None:
        with schema_context(world.a):
            ConnectedAccount.objects.filter(provider__key=key).update(expires_at=timezone.now() - timedelta(seconds=1))

    def refresh_token() -> str:
        with schema_context(world.a):
            return Credential.objects.get(account__provider__key=key).refresh_token

    _connect(in_a, in_b, key)
    used = search()
    works(not used.is_error, "the connected account's tool call failed")
    names = sorted(c["name"] for c in used.structured_content["contacts"])
    with schema_context(world.b):
        expected = sorted(Contact.objects.values_list("name", flat=True))
    works(names == expected, "the tool did not read B's contacts")

    before = refresh_token()
    expire()
    works(not search().is_error, "the call over an expired upstream token failed")
    works(refresh_token() != before, "the upstream refresh token was not rotated")

    revoked = httpx.post(
        b.url("revoke_token/"),
        data={"token": refresh_token(), "token_type_hint": "refresh_token"},
        auth=(client_id, secret),
        timeout=30,
    )
    works(revoked.status_code == 200, f"revocation at B answered {revoked.status_code}")
    expire()
    denied = search()
    require(denied.is_error, "the tool still worked after the upstream grant was revoked")
    details = denied.structured_content or {}
    works(details.get("class") == "CONNECTOR_REAUTH_REQUIRED", f"got class {details.get('class')!r}")
    connect_path = urlsplit(str(details.get("connect_url", ""))).path  # host: the deployment's PUBLIC_BASE_URL
    works(connect_path == f"/t/{world.a}/connections/{key}/connect/", "no connect URL in the result")

    _connect(in_a, in_b, key)
    works(not search().is_error, "the tool did not work again after reconnecting")


def deprovisioning(world: World) -> None:
    """The tenant's IdP deactivates a member through SCIM (Entra's PATCH shape): the member's MCP token
    is refused at the very next tools/call, one request after the SCIM answer, and the member's
    connected account at the upstream provider (tenant B's authorization server) is revoked there by
    the connectors' sweep, which the deployment's Celery worker runs at once."""
    a, b = world.tenant(world.a), world.tenant(world.b)
    email = world.deprovisioned
    with schema_context(world.a):
        scim_token, _ = issue_scim_token()
    client_id, secret = _register_upstream(world, "deprovisioning")
    key = f"deprov-{world.run}"
    with schema_context(world.a):
        add_provider(key=key, issuer=b.base, client_id=client_id, client_secret=secret, scopes=["crm.read"],
                     display_name=f"Lifecycle {world.run} B (deprovisioning)", mcp_endpoint=b.mcp)  # fmt: skip
    _connect(world.browser(world.a, email), world.browser(world.b, email), key)
    with schema_context(world.b):
        upstream = RefreshToken.objects.filter(application__client_id=client_id, user__email=email)
        works(upstream.filter(revoked__isnull=True).exists(), "the upstream grant at B was not created")
    _, tokens = world.tokens(world.a, email, "crm.read")
    url = world.mcp(world.a)
    works(call(url, tokens["access_token"], "crm_search_contacts").ok, "the call before deprovisioning failed")

    scim = httpx.Client(base_url=a.url("scim/v2"), headers={"Authorization": f"Bearer {scim_token}"}, timeout=30)
    found = scim.get("/Users", params={"filter": f'userName eq "{email}"'})
    works(
        found.status_code == 200 and found.json().get("totalResults") == 1, f"SCIM lookup answered {found.status_code}"
    )
    scim_id = found.json()["Resources"][0]["id"]
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}  # fmt: skip
    deactivated = scim.patch(f"/Users/{scim_id}", json=patch)
    works(
        deactivated.status_code == 200 and deactivated.json().get("active") is False, "SCIM PATCH active false failed"
    )
    after = call(url, tokens["access_token"], "crm_search_contacts")
    require(not after.ok, "a deprovisioned member's token still worked at the next call")
    works(after.status in (401, 403), f"got {after.describe()}")

    deadline = time.monotonic() + UPSTREAM_REVOCATION_SECONDS
    while time.monotonic() < deadline:
        with schema_context(world.b):
            if not upstream.filter(revoked__isnull=True).exists():
                return
        time.sleep(0.5)
    works(
        False, f"the upstream grant at B was not revoked within {UPSTREAM_REVOCATION_SECONDS} s (is a worker running?)"
    )


def _register_upstream(world: World, purpose: str) -> tuple[str, str]:
    """A confidential client at tenant B whose redirect URI is tenant A's connections callback."""
    registered = httpx.post(
        world.tenant(world.b).url("register/"),
        json={
            "client_name": f"lifecycle {world.run} {purpose}",
            "redirect_uris": [world.tenant(world.a).url("connections/callback/")],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "application_type": "native",
        },
        timeout=30,
    )
    works(registered.status_code == 201, f"registration at B answered {registered.status_code}")
    return registered.json()["client_id"], registered.json()["client_secret"]


def _connect(in_a: Browser, in_b: Browser, key: str) -> None:
    """The member's browser: A's connect page -> B's consent page -> A's callback."""
    page_url = in_a.tenant.url(f"connections/{key}/connect/")
    page = in_a.http.get(page_url)
    works(page.status_code == 200, f"the connect page answered {page.status_code}")
    started = in_a.http.post(
        page_url,
        data={"csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"]},
        headers={"Referer": page_url},
    )
    works(started.status_code == 302, f"starting the connection answered {started.status_code}")
    back = in_b.authorize(started.headers["location"])
    callback = back.headers.get("location", "")
    works(
        back.status_code == 302 and callback.startswith(in_a.tenant.url("connections/callback/")),
        "B did not send the browser back",
    )
    done = in_a.http.get(callback)
    works(done.status_code == 302, f"the callback answered {done.status_code}")


def mutating_retry_applies_once(world: World) -> None:
    """Exactly-once: a write refused for scope, retried after the user re-authorizes (step-up) with the same
    idempotency key, is applied; a retry after a refresh (the answer was lost) and another with the same
    key return the stored result instead of writing again; other arguments under the key are refused."""
    url, marker = world.mcp(world.a), f"lifecycle {world.run} exactly once"
    contact = world.contact_ids(world.a)[0]
    arguments, key = {"contact_id": contact, "body": marker}, f"lifecycle-{world.run}-once"
    meta = {IDEMPOTENCY_META_KEY: key}
    client, narrow = world.tokens(world.a, world.member, "crm.read")
    refused = call(url, narrow["access_token"], "crm_create_note", arguments, meta=meta)
    require(not refused.ok and not _note_exists(world.a, marker), "a crm.read token wrote a note")
    wide = obtain_tokens(world.browser(world.a, world.member), client, scope="crm.read crm.write")  # step-up
    first = call(url, wide["access_token"], "crm_create_note", arguments, meta=meta)
    works(first.ok, f"the write after step-up failed: {first.describe()}")
    renewed = refresh(client, wide["refresh_token"])
    works(renewed.status_code == 200, f"the refresh failed (HTTP {renewed.status_code})")
    again = call(url, renewed.json()["access_token"], "crm_create_note", arguments, meta=meta)
    works(again.ok, f"the retry after the refresh failed: {again.describe()}")
    first_id = first.body["result"]["structuredContent"]["id"]
    require(again.body["result"]["structuredContent"]["id"] == first_id, "the retry wrote another note")
    require((again.body["result"].get("_meta") or {}).get(IDEMPOTENT_REPLAY_META), "the retry was not a replay")
    with schema_context(world.a):
        require(Note.objects.filter(body=marker).count() == 1, "the write was applied more than once")
    other = call(url, renewed.json()["access_token"], "crm_create_note", {**arguments, "body": "other"}, meta=meta)
    require(not other.ok, "the key was accepted again with other arguments")
    require(not _note_exists(world.a, "other"), "other arguments under a used key were written")


def enterprise_managed_authorization(world: World) -> None:
    """Enterprise-managed authorization: tenant A trusts a throwaway identity provider served by this
    command (``lifecycle.idp``) for ID-JAGs, with link-by-email for the run's domain. A confidential
    client registered for the JWT bearer grant gets a token from an ID-JAG through the official Python
    SDK's identity-assertion client (no browser) and calls a tool as the member; an ID-JAG for another
    audience is refused; the membership ends and the next call with that token is refused, and so is
    the next ID-JAG. A deployment that refuses a plain-http issuer (production) is a ``[skip]``."""
    a, url = world.tenant(world.a), world.mcp(world.a)
    with ThrowawayIdP(world.idp_host) as idp:
        with schema_context(world.a):
            try:
                add_identity_provider(
                    key=f"lifecycle-{world.run}",
                    issuer=idp.issuer,
                    client_id=f"lifecycle-{world.run}",
                    name=f"Lifecycle {world.run} IdP",
                    email_domains=["lifecycle.test"],
                    link_by_email=True,
                    accept_id_jag=True,
                )
            except IdentityError as exc:
                if exc.code in ("insecure_url", "blocked_address"):
                    raise CheckSkipped(
                        f"this deployment refuses the throwaway IdP's plain-http issuer {idp.issuer} [{exc.code}]"
                    ) from None
                raise
        metadata = httpx.get(f"{world.base_url}/.well-known/oauth-authorization-server/t/{world.a}", timeout=30)
        works(metadata.status_code == 200, f"the metadata answered {metadata.status_code}")
        works(JWT_BEARER in metadata.json().get("grant_types_supported", []), "the metadata lists no JWT bearer grant")
        registered = httpx.post(
            a.url("register/"),
            json={
                "client_name": f"lifecycle {world.run} enterprise agent",
                "redirect_uris": ["http://127.0.0.1:9/callback"],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["authorization_code", "refresh_token", JWT_BEARER],
                "application_type": "native",
            },
            timeout=30,
        )
        works(registered.status_code == 201, f"registering for the JWT bearer grant answered {registered.status_code}")
        client_id, secret = registered.json()["client_id"], registered.json()["client_secret"]

        def id_jag(audience: str, resource: str) -> str:
            return idp.id_jag(
                sub=f"lifecycle-{world.run}-idjag",
                email=world.idjag,
                audience=audience,
                client_id=client_id,
                resource=resource,
                scope="crm.read",
            )

        async def assertion(audience: str, resource: str) -> str:
            return id_jag(audience, resource)

        storage = MemoryStorage()
        oauth = IdentityAssertionOAuthProvider(
            server_url=url,
            storage=storage,
            client_id=client_id,
            client_secret=secret,
            issuer=a.base,
            assertion_provider=assertion,
            scope="crm.read",
        )
        result = sdk_call(url, oauth, "crm_search_contacts", {})
        works(not result.is_error and result.structured_content["contacts"], "the call with the ID-JAG's token failed")
        companies = {c["company"] for c in result.structured_content["contacts"]}
        require(companies == {world.a}, "the ID-JAG's token read another tenant's contacts")
        require(storage.tokens.refresh_token is None, "a refresh token was issued for an ID-JAG")

        def present(assertion_value: str) -> httpx.Response:
            data = {"grant_type": JWT_BEARER, "assertion": assertion_value}
            return httpx.post(a.url("token/"), data=data, auth=(client_id, secret), timeout=30)

        elsewhere = present(id_jag(world.tenant(world.b).base, url))
        require(elsewhere.status_code == 400, f"an ID-JAG for another audience got HTTP {elsewhere.status_code}")
        remove_user(slug=world.a, email=world.idjag)
        after = call(url, storage.tokens.access_token, "crm_search_contacts")
        require(not after.ok, "an ID-JAG's token still worked after the membership ended")
        works(after.status in (401, 403), f"got {after.describe()}")
        again = present(id_jag(a.base, url))
        require(again.status_code == 400, f"an ended member's ID-JAG got HTTP {again.status_code}")
