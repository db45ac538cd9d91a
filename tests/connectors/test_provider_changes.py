"""Admin edits cannot leak credentials: a provider's endpoints or client id change only with the client
secret entered again, and then every stored grant is revoked at the *old* endpoints (nothing of it
reaches the new host), the accounts must reconnect and say why; endpoints must be on the issuer's
origin, named by its discovery document or a preset's documented hosts; deleting an account or a
provider in the tenant admin revokes its grants upstream (the sweep retries while the provider is
down), and a deleted provider stays invisible until then. Against two npm oidc-provider instances and
the live server."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings
from django_tenants.utils import schema_context

from connectors.models import ConnectedAccount, Credential, Provider, RetiredGrant
from connectors.tasks import sweep_in_tenant
from observability.models import AuthEvent
from tests.admin_http import AdminSession
from tests.connectors.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    ConnectBrowser,
    account_of,
    add_oidc_provider,
    provider_form,
)
from tests.mcp_raw import call
from tests.support.mcp import platform_token, result_of

pytestmark = pytest.mark.timeout(120)


def provider(key: str) -> Provider:
    with schema_context("acme"):
        return Provider.objects.get(key=key)


def admin_session(live) -> AdminSession:
    return AdminSession(live.tenant("acme"), "admin@acme.test").login()


def endpoints_of(server) -> dict[str, str]:
    return {
        "issuer": server.issuer,
        "authorization_endpoint": f"{server.issuer}/auth",
        "token_endpoint": f"{server.issuer}/token",
        "revocation_endpoint": f"{server.issuer}/token/revocation",
        "userinfo_endpoint": f"{server.issuer}/me",
    }


def audit_rows(key: str, outcome: str) -> list[AuthEvent]:
    with schema_context("acme"):
        return list(AuthEvent.objects.filter(event="connector_provider", tool=f"provider:{key}", outcome=outcome))


def profile(live, key: str) -> dict:
    """The member's ``connector_profile`` tool call over MCP (its result)."""
    return result_of(call(live.tenant_url("acme", "mcp"), platform_token(live), "connector_profile", {"provider": key}))


def cli(*args: str) -> str:
    out = StringIO()
    call_command("connector_provider_add", *args, stdout=out)
    return out.getvalue()


def test_moving_a_provider_needs_the_secret_and_revokes_every_grant_at_the_old_endpoints(live, oidc, other_oidc):
    key = add_oidc_provider(oidc)
    member = ConnectBrowser(live, oidc)
    assert member.connect(key).status_code == 302
    account, credential = account_of(key)
    admin = admin_session(live)
    path = f"connectors/provider/{account.provider_id}/change/"
    moved = endpoints_of(other_oidc)

    # the stored secret is never reused for new endpoints: without it the form refuses, nothing changes
    refused = admin.post(path, provider_form(provider(key), **moved))
    assert refused.status_code == 200 and "[client_secret_required_for_change]" in refused.text
    assert provider(key).token_endpoint == f"{oidc.issuer}/token"
    assert account_of(key)[1] is not None

    old_side, new_side = oidc.stats(), other_oidc.stats()
    saved = admin.post(path, provider_form(provider(key), **moved, client_secret=CLIENT_SECRET))
    assert saved.status_code == 302, saved.text[:500]

    # revoked where they were issued, with the old client; nothing of them went to the new host
    assert oidc.stats()["revocations"] == old_side["revocations"] + 2
    assert oidc.introspect(credential.refresh_token)["active"] is False
    assert oidc.introspect(credential.access_token)["active"] is False
    assert other_oidc.stats()["token_requests"] == new_side["token_requests"]
    assert other_oidc.stats()["revocations"] == new_side["revocations"]
    after, gone = account_of(key)
    assert (after.status, after.status_reason, gone) == ("needs_reauth", "provider_changed", None)
    with schema_context("acme"):
        assert not RetiredGrant.objects.filter(provider_id=after.provider_id).exists()
    moved_provider = provider(key)
    assert moved_provider.token_endpoint == f"{other_oidc.issuer}/token"
    assert moved_provider.jwks_uri == f"{other_oidc.issuer}/jwks"  # re-discovered, not typed
    assert moved_provider.authorization_response_iss_parameter_supported is True
    row = audit_rows(key, "grant_target_changed")[0]  # who did it, from where
    assert row.user_id == get_user_model().objects.get(email="admin@acme.test").pk and row.source_address

    # the member sees why, and tools say to connect again
    page = member.http.get(member.url("connections/"))
    assert 'class="reason">provider_changed<' in page.text and "An administrator changed this provider" in page.text
    answer = profile(live, key)
    assert answer["isError"] is True and answer["structuredContent"]["class"] == "CONNECTOR_REAUTH_REQUIRED"

    # connecting again goes to the new provider
    assert member.connect(key).status_code == 302
    again, fresh = account_of(key)
    assert again.status == "active" and other_oidc.introspect(fresh.access_token)["active"] is True


def test_cli_change_of_the_client_id_revokes_with_the_old_client(live, oidc):
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    _, credential = account_of(key)
    out = cli("acme", key, "--issuer", oidc.issuer, "--client-id", "another-client", "--client-secret", "s2")
    assert "must connect again" in out and "client_id" in out and "s2" not in out
    # revoked at the provider with the client that obtained it (another client could not revoke it)
    assert oidc.introspect(credential.refresh_token)["active"] is False
    after, gone = account_of(key)
    assert (after.status, after.status_reason, gone) == ("needs_reauth", "provider_changed", None)
    row = audit_rows(key, "grant_target_changed")[0]
    assert (row.client_id, row.user_id) == ("cli", None)


def test_settings_only_changes_keep_the_grants(live, oidc):
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    _, credential = account_of(key)
    admin = admin_session(live)
    saved = admin.post(
        f"connectors/provider/{provider(key).pk}/change/", provider_form(provider(key), display_name="Renamed")
    )
    assert saved.status_code == 302
    account, kept = account_of(key)
    assert account.status == "active" and kept.refresh_token == credential.refresh_token
    assert oidc.introspect(credential.refresh_token)["active"] is True
    assert audit_rows(key, "updated")


@pytest.mark.django_db
def test_endpoints_elsewhere_are_refused_unless_the_operator_allows_them():
    split = [
        "--authorize-url", "https://login.provider.example/authorize",
        "--token-url", "https://tokens.elsewhere.example/token",
        "--client-id", "i", "--client-secret", "s",
    ]  # fmt: skip
    with pytest.raises(CommandError) as refused:
        cli("acme", "xo", *split)
    assert str(refused.value).endswith("[cross_origin_endpoint]") and "token_endpoint" in str(refused.value)
    with override_settings(CONNECTORS_ALLOW_CROSS_ORIGIN_ENDPOINTS=True):
        assert "added" in cli("acme", "xo", *split)
    # a preset's documented hosts are fine (Google's token endpoint is not on its issuer's host) ...
    assert "added" in cli("acme", "xo-google", "--preset", "google", "--client-id", "i", "--client-secret", "s")
    # ... and its API on them, but not elsewhere
    google = ["acme", "xo-google", "--preset", "google", "--client-id", "i", "--client-secret", "s"]
    assert "updated" in cli(*google, "--api-base-url", "https://www.googleapis.com/gmail/v1")
    with pytest.raises(CommandError) as api:
        cli(*google, "--api-base-url", "https://api.elsewhere.example/v1")
    assert str(api.value).endswith("[cross_origin_endpoint]")


def test_endpoints_named_by_the_issuers_discovery_document_are_allowed(live, oidc, other_oidc, document_server):
    """An issuer whose discovery document names a token endpoint on another origin (as Google's does):
    fetched by the platform, that endpoint is allowed; a typed one on that origin is not."""
    issuer = document_server.url
    document_server.serve_discovery(
        authorization_endpoint=f"{issuer}/auth",
        token_endpoint=f"{other_oidc.issuer}/token",
        userinfo_endpoint=f"{issuer}/me",
    )
    assert "added" in cli("acme", "disc-xo", "--issuer", issuer, "--client-id", CLIENT_ID, "--client-secret", "s")
    assert provider("disc-xo").token_endpoint == f"{other_oidc.issuer}/token"
    admin = admin_session(live)
    path = f"connectors/provider/{provider('disc-xo').pk}/change/"
    typed = provider_form(provider("disc-xo"), userinfo_endpoint=f"{other_oidc.issuer}/me", client_secret="s")
    refused = admin.post(path, typed)
    assert refused.status_code == 200 and "[cross_origin_endpoint]" in refused.text
    assert provider("disc-xo").userinfo_endpoint == f"{issuer}/me"


def test_admin_deleting_an_account_revokes_it_upstream(live, oidc):
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    account, credential = account_of(key)
    admin = admin_session(live)
    deleted = admin.post(f"connectors/connectedaccount/{account.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert oidc.introspect(credential.refresh_token)["active"] is False
    assert oidc.introspect(credential.access_token)["active"] is False
    after, gone = account_of(key)
    assert (after.status, after.status_reason, after.revocation_pending, gone) == (
        "revoked", "admin_disconnected", False, None,
    )  # fmt: skip

    # the provider is down: pending, then revoked by the sweep
    member = ConnectBrowser(live, oidc)
    assert member.connect(key).status_code == 302
    account, credential = account_of(key)
    oidc.fail_next(1, status=503, path="/token/revocation")
    assert admin.post(f"connectors/connectedaccount/{account.pk}/delete/", {"post": "yes"}).status_code == 302
    pending, kept = account_of(key)
    assert (pending.status, pending.revocation_pending) == ("revoked", True) and kept is not None
    assert oidc.introspect(credential.refresh_token)["active"] is True
    assert sweep_in_tenant("acme")["revoked"] >= 1
    assert oidc.introspect(credential.refresh_token)["active"] is False
    # a revoked account with nothing left to revoke is deleted for real
    assert admin.post(f"connectors/connectedaccount/{account.pk}/delete/", {"post": "yes"}).status_code == 302
    assert account_of(key) == (None, None)


def test_a_deleted_provider_is_invisible_until_the_sweep_revoked_its_grants(live, oidc):
    key = add_oidc_provider(oidc)
    member = ConnectBrowser(live, oidc)
    assert member.connect(key).status_code == 302
    account, credential = account_of(key)
    admin = admin_session(live)
    oidc.fail_next(50, status=503, path="/token/revocation")  # its revocation endpoint is down
    try:
        assert admin.post(f"connectors/provider/{account.provider_id}/delete/", {"post": "yes"}).status_code == 302
        # gone from every list and page
        assert f"/provider/{account.provider_id}/change/" not in admin.get("connectors/provider/").text
        # the admin redirects a missing object's change page to its index with a message
        assert admin.get(f"connectors/provider/{account.provider_id}/change/").status_code == 302
        assert f'data-provider="{key}"' not in member.http.get(member.url("connections/")).text
        assert member.http.get(member.url(f"connections/{key}/connect/")).status_code == 404
        listed = member.http.get(member.url("api/connections/")).json()["connections"]
        assert all(row["provider"] != key for row in listed)
        assert profile(live, key)["isError"] is True
        # kept, with its account pending revocation
        with schema_context("acme"):
            kept = Provider.all_objects.get(pk=account.provider_id)
            pending = ConnectedAccount.objects.get(pk=account.pk)
            assert kept.deleted_at is not None and kept.key != key
            assert (pending.status, pending.status_reason, pending.revocation_pending) == (
                "revoked", "provider_deleted", True,
            )  # fmt: skip
            assert Credential.objects.filter(account=pending).exists()
            assert not Provider.objects.filter(key=key).exists()  # the key is free at once
        assert oidc.introspect(credential.refresh_token)["active"] is True
        assert sweep_in_tenant("acme").get("providers_removed", 0) == 0  # still down: kept
    finally:
        oidc.fail_next(0, path="/token/revocation")
    with schema_context("acme"):  # its backoff is over
        ConnectedAccount.objects.filter(pk=account.pk).update(next_revocation_at=None)
    counts = sweep_in_tenant("acme")
    assert counts["providers_removed"] >= 1
    assert oidc.introspect(credential.refresh_token)["active"] is False
    with schema_context("acme"):
        assert not Provider.all_objects.filter(pk=account.provider_id).exists()
        assert not ConnectedAccount.objects.filter(pk=account.pk).exists()
    assert audit_rows(key, "deleted") and audit_rows(key, "removed")
    assert add_oidc_provider(oidc, key=key) == key  # its key is free again
