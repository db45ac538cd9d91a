"""The tenant admin: providers with a write-only client secret and the https rule, connected accounts
read-only without tokens."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from connectors.models import ConnectedAccount, Credential, Provider
from connectors.services import add_provider
from tests.conftest import PASSWORD
from tests.connectors.conftest import provider_form


@pytest.fixture
def admin_client(client):
    client.post("/t/acme/admin/login/", {"username": "admin@acme.test", "password": PASSWORD})
    return client


@pytest.mark.django_db
def test_client_secret_is_write_only(admin_client):
    with schema_context("acme"):
        provider, _ = add_provider(key="adm", preset_name="google", client_id="id", client_secret="stored-secret-123")
    url = f"/t/acme/admin/connectors/provider/{provider.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and "stored-secret-123" not in page.content.decode()
    listing = admin_client.get("/t/acme/admin/connectors/provider/")
    assert "adm" in listing.content.decode() and "stored-secret-123" not in listing.content.decode()
    assert admin_client.post(url, provider_form(provider, display_name="Renamed")).status_code == 302
    with schema_context("acme"):
        provider.refresh_from_db()
    assert (provider.display_name, provider.client_secret) == ("Renamed", "stored-secret-123")  # kept
    assert admin_client.post(url, provider_form(provider, client_secret="new-secret-456")).status_code == 302
    with schema_context("acme"):
        assert Provider.objects.get(pk=provider.pk).client_secret == "new-secret-456"


@pytest.mark.django_db
def test_admin_refuses_plain_http_endpoints(admin_client):
    with schema_context("acme"):
        provider, _ = add_provider(key="adm2", preset_name="google", client_id="id", client_secret="s")
    url = f"/t/acme/admin/connectors/provider/{provider.pk}/change/"
    response = admin_client.post(url, provider_form(provider, token_endpoint="http://tokens.example/t"))
    assert response.status_code == 200 and "[insecure_url]" in response.content.decode()


@pytest.mark.django_db
def test_accounts_are_listed_without_tokens_and_read_only(admin_client, django_user_model):
    user = django_user_model.objects.get(email="member@acme.test")
    with schema_context("acme"):
        provider, _ = add_provider(key="adm3", preset_name="google", client_id="id", client_secret="s")
        account = ConnectedAccount.objects.create(user=user, provider=provider, external_account_label="ext@example")
        Credential.objects.create(account=account, access_token="at-visible-?", refresh_token="rt-visible-?")
    listing = admin_client.get("/t/acme/admin/connectors/connectedaccount/").content.decode()
    assert "ext@example" in listing and "at-visible-?" not in listing and "rt-visible-?" not in listing
    detail = admin_client.get(f"/t/acme/admin/connectors/connectedaccount/{account.pk}/change/")
    assert detail.status_code == 200 and "at-visible-?" not in detail.content.decode()
    assert admin_client.get("/t/acme/admin/connectors/connectedaccount/add/").status_code == 403
