"""The tenant's identity provider records: ``tenant_idp_add`` (idempotent, stable codes) and the
tenant admin (secret write-only, the operator's fields read-only), against the npm ``oidc-provider``."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from identity.models import IdentityProvider
from tests.admin_http import AdminSession
from tests.conftest import PASSWORD
from tests.identity.conftest import CLIENT_SECRET, client_id


def idp_add(*args: str) -> str:
    out = io.StringIO()
    call_command("tenant_idp_add", *args, stdout=out)
    return out.getvalue().strip()


def record(slug: str, key: str) -> IdentityProvider:
    with schema_context(slug):
        return IdentityProvider.objects.get(key=key)


def test_tenant_idp_add_is_idempotent_and_stores_every_option(live, idp):
    key = f"okta-{uuid.uuid4().hex[:6]}"
    args = ["sso_a", key, "--issuer", idp.issuer, "--client-id", client_id("sso_a"), "--client-secret", CLIENT_SECRET]
    options = ["--name", "Okta", "--email-domain", "Idp.Example", "--email-domain", "@corp.example",
               "--jit-role", "member", "--role-claim", "groups", "--admin-value", "admins",
               "--organization", "tid=7f8e", "--link-by-email", "--accept-id-jag"]  # fmt: skip
    assert "added" in idp_add(*args, *options)
    assert "already as asked" in idp_add(*args, *options)
    stored = record("sso_a", key)
    assert stored.email_domains == ["corp.example", "idp.example"] and stored.link_by_email
    assert stored.accept_id_jag and stored.jit_role == "member"
    assert (stored.role_claim, stored.admin_value) == ("groups", "admins")
    assert (stored.organization_claim, stored.organization_value) == ("tid", "7f8e")
    assert stored.metadata["issuer"] == idp.issuer and stored.metadata["jwks_uri"].startswith(idp.issuer)
    assert stored.client_secret == CLIENT_SECRET
    # a later call changes only what it names
    assert "updated: name" in idp_add("sso_a", key, "--issuer", idp.issuer, "--name", "Okta Workforce")
    assert record("sso_a", key).email_domains == ["corp.example", "idp.example"]
    assert "client secret" in idp_add("sso_a", key, "--issuer", idp.issuer, "--client-secret", "rotated")
    assert record("sso_a", key).client_secret == "rotated"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["nosuchtenant", "k", "--issuer", "{idp}", "--client-id", "c"], "unknown_tenant"),
        (["sso_a", "Bad Key", "--issuer", "{idp}", "--client-id", "c"], "invalid_key"),
        (["sso_a", "k-new", "--issuer", "{idp}"], "client_id_required"),
        (["sso_a", "k", "--issuer", "http://idp.example.com", "--client-id", "c"], "insecure_url"),
        (["sso_a", "k", "--issuer", "https://10.20.30.40", "--client-id", "c"], "blocked_address"),
        (["sso_a", "k", "--issuer", "{idp}", "--client-id", "c", "--role-claim", "groups"], "admin_value_required"),
        (["sso_a", "k", "--issuer", "{idp}", "--client-id", "c", "--email-domain", "not a domain"], "invalid_domain"),
        (["sso_a", "k", "--issuer", "{idp}", "--client-id", "c", "--organization", "tid"], "invalid_organization"),
    ],
)
def test_tenant_idp_add_refusals_have_stable_codes(live, idp, args, code):
    with pytest.raises(CommandError, match=rf"\[{code}\]"):
        idp_add(*[a.replace("{idp}", idp.issuer) for a in args])


def test_an_issuer_whose_metadata_names_another_issuer_is_refused(live, document_server):
    document_server.documents["/.well-known/openid-configuration"] = json.dumps(
        {"issuer": "https://elsewhere.example", "authorization_endpoint": "x", "token_endpoint": "y", "jwks_uri": "z"}
    ).encode()
    with pytest.raises(CommandError, match=r"\[issuer_mismatch\]"):
        idp_add("sso_a", "mixup", "--issuer", document_server.url, "--client-id", "c")
    with pytest.raises(CommandError, match=r"\[discovery_failed\]"):
        idp_add("sso_a", "nothing", "--issuer", document_server.url + "/none", "--client-id", "c")


def test_tenant_sso_required_is_idempotent(live, sso_tenants):
    out = io.StringIO()
    call_command("tenant_sso_required", "sso_a", "off", stdout=out)
    call_command("tenant_sso_required", "sso_a", "off", stdout=out)
    assert "already optional" in out.getvalue()
    with pytest.raises(CommandError, match=r"\[unknown_tenant\]"):
        call_command("tenant_sso_required", "nosuchtenant", "on")


def test_the_tenant_admin_adds_a_provider_but_not_its_domains(live, idp):
    admin = AdminSession(live.tenant("sso_a"), "admin@sso-a.test", PASSWORD).login()
    form = admin.get("identity/identityprovider/add/")
    assert form.status_code == 200
    assert 'name="client_secret"' in form.text
    assert 'name="email_domains"' not in form.text and 'name="link_by_email"' not in form.text
    key = f"admin-{uuid.uuid4().hex[:6]}"
    answer = admin.post(
        "identity/identityprovider/add/",
        {
            "key": key,
            "name": "Entra",
            "issuer": idp.issuer,
            "client_id": client_id("sso_a"),
            "client_secret": "typed-secret",
            "jit_role": "member",
            "role_claim": "",
            "admin_value": "",
            "organization_claim": "",
            "organization_value": "",
            "is_enabled": "on",
            "email_domains": '["victim.example"]',  # not a field of the form: ignored
            "link_by_email": "on",
        },
    )
    assert answer.status_code == 302, answer.text[:2000]
    stored = record("sso_a", key)
    assert stored.client_secret == "typed-secret" and stored.email_domains == [] and not stored.link_by_email
    change = admin.get(f"identity/identityprovider/{stored.pk}/change/")
    assert "typed-secret" not in change.text and 'name="email_domains"' not in change.text
    refused = admin.post(
        "identity/identityprovider/add/",
        {"key": "x" + key, "name": "N", "issuer": "http://idp.example.com", "client_id": "c", "jit_role": "none"},
    )
    assert refused.status_code == 200 and "insecure_url" in refused.text


def test_loopback_http_issuers_only_in_development(settings):
    from identity.errors import IdentityError
    from identity.outbound import check_url

    check_url("http://127.0.0.1:8080")  # development: allowed for tests and `make run`
    settings.PRODUCTION = True
    with pytest.raises(IdentityError) as refused:
        check_url("http://127.0.0.1:8080")
    assert refused.value.code == "insecure_url"
    check_url("https://idp.example.com")
    settings.PRODUCTION, settings.IDENTITY_ALLOW_LOOPBACK_HTTP = False, False
    with pytest.raises(IdentityError):
        check_url("http://localhost:8080")
