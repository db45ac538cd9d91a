"""Connector set-ups: an account connected at the npm oidc-provider, accounts made in bulk, and the
platform's own authorization server (tenant globex) as the provider of tenant acme."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import RefreshToken

from connectors.models import ConnectedAccount, Credential, Provider
from tests.conftest import LiveServer
from tests.connectors.conftest import ConnectBrowser, OidcServer, add_oidc_provider
from tests.oauth_flow import Browser, hidden_inputs, signed_in_browser


def connected_account(live, oidc) -> tuple[str, ConnectedAccount]:
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    with schema_context("acme"):
        return key, ConnectedAccount.objects.get(provider__key=key, user__email="member@acme.test")


def park_other_due_accounts(*slugs: str) -> None:
    """Earlier tests leave accounts that expire soon: keep the refresh job off them here."""
    for slug in slugs:
        with schema_context(slug):
            ConnectedAccount.objects.filter(expires_at__lte=timezone.now() + timedelta(hours=1)).update(
                next_refresh_at=timezone.now() + timedelta(days=1)
            )


def bulk_accounts(oidc: OidcServer, slug: str, template_key: str, email: str, count: int, expires_in: int) -> list[int]:
    """``count`` connected accounts of ``email`` (one per copy of the template provider), each with a
    real refresh token minted at the provider, created in bulk."""
    from accounts.models import User

    tokens = oidc.mint(count, prefix=f"bulk-{uuid.uuid4().hex[:6]}")
    user = User.objects.get(email=email)
    with schema_context(slug):
        template = Provider.objects.get(key=template_key)
        fields = {f.name: getattr(template, f.name) for f in Provider._meta.concrete_fields if f.name not in ("id",)}
        providers = Provider.objects.bulk_create(
            [Provider(**{**fields, "key": f"{template_key}-{i}"}) for i in range(count)]
        )
        expires = timezone.now() + timedelta(seconds=expires_in)
        accounts = ConnectedAccount.objects.bulk_create(
            [ConnectedAccount(user=user, provider=p, expires_at=expires, granted_scopes=["openid"]) for p in providers]
        )
        Credential.objects.bulk_create(
            [
                Credential(account=a, access_token="expiring-soon", refresh_token=t)
                for a, t in zip(accounts, tokens, strict=True)
            ]
        )
        return [a.pk for a in accounts]


def register_platform_client(live: LiveServer) -> tuple[str, str]:
    response = httpx.post(
        live.tenant_url("globex", "register/"),
        json={
            "client_name": "acme connectors",
            "redirect_uris": [live.tenant_url("acme", "connections/callback/")],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "application_type": "native",
        },
        timeout=20,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["client_id"], body["client_secret"]


def connect_to_globex(live: LiveServer, key: str) -> httpx.Response:
    """acme's member connects the globex account of member@globex.test (one browser, two tenants)."""
    acme = signed_in_browser(live.tenant("acme"), "member@acme.test")
    globex = Browser(live.tenant("globex"), "member@globex.test", http=acme.http)
    globex.login()  # per-tenant session cookies: both sessions live in one cookie jar
    page = acme.http.get(live.tenant_url("acme", f"connections/{key}/connect/"))
    started = acme.http.post(
        live.tenant_url("acme", f"connections/{key}/connect/"),
        data={"csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"]},
        headers={"Referer": live.tenant_url("acme", f"connections/{key}/connect/")},
    )
    assert started.status_code == 302 and "/t/globex/authorize/" in started.headers["location"]
    back = globex.authorize(started.headers["location"])
    assert back.status_code == 302 and back.headers["location"].startswith(
        live.tenant_url("acme", "connections/callback/")
    )
    assert "iss=" in back.headers["location"]  # RFC 9207, checked by the callback
    return acme.http.get(back.headers["location"])


def issued_refresh_tokens(client_id: str) -> int:
    """Counted at the provider: DOT keeps a rotated refresh token's row (marked revoked)."""
    with schema_context("globex"):
        return RefreshToken.objects.filter(application__client_id=client_id).count()


def account_and_credential(key: str) -> tuple[ConnectedAccount, Credential]:
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key, user__email="member@acme.test")
        return account, Credential.objects.get(account=account)
