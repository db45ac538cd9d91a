"""SCIM 2.0 per tenant over HTTP, with the request sequences Okta and Microsoft Entra ID send
(create, look up by ``userName``, PATCH ``active`` false in each one's shape), the deprovisioning
measurement (SCIM ``active: false`` -> the very next ``tools/call`` refused), and the refusals."""

from __future__ import annotations

import io
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken, RefreshToken

from accounts.models import User
from identity.models import ScimToken, ScimUser
from tenants.models import Membership
from tests.conftest import PASSWORD
from tests.mcp_raw import call
from tests.oauth_flow import Browser, obtain_tokens, refresh, register

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def issue_token(slug: str) -> str:
    out = io.StringIO()
    call_command("tenant_scim_token", slug, stdout=out)
    return out.getvalue().split()[-1]


class Scim:
    """An IdP's SCIM client for one tenant."""

    def __init__(self, live, slug: str, token: str) -> None:
        self.base = live.tenant_url(slug, "scim/v2")
        self.http = httpx.Client(
            timeout=20, headers={"Authorization": f"Bearer {token}", "Accept": SCIM_JSON, "Content-Type": SCIM_JSON}
        )

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(f"{self.base}/{path}", params=params)

    def post(self, body: dict) -> httpx.Response:
        return self.http.post(f"{self.base}/Users", json=body)

    def patch(self, scim_id: str, *operations: dict) -> httpx.Response:
        return self.http.patch(
            f"{self.base}/Users/{scim_id}", json={"schemas": [PATCH], "Operations": list(operations)}
        )

    def put(self, scim_id: str, body: dict) -> httpx.Response:
        return self.http.put(f"{self.base}/Users/{scim_id}", json=body)

    def delete(self, scim_id: str) -> httpx.Response:
        return self.http.delete(f"{self.base}/Users/{scim_id}")

    def find(self, user_name: str) -> httpx.Response:
        return self.get("Users", filter=f'userName eq "{user_name}"')


@pytest.fixture(scope="module")
def scim_token(live_server_url, sso_tenants) -> str:
    return issue_token("sso_a")


@pytest.fixture
def scim(live, scim_token) -> Scim:
    return Scim(live, "sso_a", scim_token)


def email() -> str:
    return f"scim-{uuid.uuid4().hex[:10]}@corp.example"


def okta_user(user_name: str) -> dict:
    """The body Okta's SCIM 2.0 app sends on create (Okta's SCIM 2.0 guide)."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00u1okta",
        "groups": [],
        "password": "ignored-by-this-service",
        "active": True,
    }


def entra_user(user_name: str) -> dict:
    """The body Microsoft Entra ID's provisioning service sends on create (its SCIM tutorial)."""
    return {
        "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Navy"},
    }


def membership(user_name: str, slug: str = "sso_a") -> Membership | None:
    return Membership.objects.filter(user__email=user_name, tenant__schema_name=slug).first()


def test_okta_sequence_create_find_deactivate_reactivate(scim):
    name = email()
    assert scim.find(name).json()["totalResults"] == 0
    created = scim.post(okta_user(name))
    assert created.status_code == 201 and created.headers["content-type"].startswith(SCIM_JSON)
    body = created.json()
    assert created.headers["location"] == body["meta"]["location"] == f"{scim.base}/Users/{body['id']}"
    assert body["userName"] == name and body["active"] is True and body["externalId"] == "00u1okta"
    assert body["name"]["givenName"] == "Ada" and body["name"]["familyName"] == "Lovelace"
    user = User.objects.get(email=name)
    assert user.full_name == "Ada Lovelace" and not user.has_usable_password()

    found = scim.find(name).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == body["id"]
    assert scim.get(f"Users/{body['id']}").json()["userName"] == name

    off = scim.patch(body["id"], {"op": "replace", "value": {"active": False}})  # Okta's shape
    assert off.status_code == 200 and off.json()["active"] is False
    assert not membership(name).is_active
    on = scim.patch(body["id"], {"op": "replace", "value": {"active": True}})
    assert on.json()["active"] is True and membership(name).is_active and membership(name).role == "member"
    assert scim.put(body["id"], okta_user(name)).status_code == 200  # the same facts: nothing to refuse


def test_entra_sequence_create_find_update_deactivate(scim):
    name = email()
    assert scim.get("Users", filter=f'userName eq "{name}"').json()["Resources"] == []
    created = scim.post(entra_user(name))
    assert created.status_code == 201
    scim_id = created.json()["id"]
    assert scim.get("Users", filter='externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"').json()["totalResults"] >= 1
    updated = scim.patch(
        scim_id,
        {"op": "Replace", "path": "displayName", "value": "Grace B. Hopper"},
        {"op": "Replace", "path": "name.givenName", "value": "Grace B."},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "X"},
        {"op": "Replace", "path": "title", "value": "Rear Admiral"},
    )
    assert updated.status_code == 200, updated.text
    assert User.objects.get(email=name).full_name == "Grace B. Hopper"
    off = scim.patch(scim_id, {"op": "Replace", "path": "active", "value": "False"})  # Entra's shape
    assert off.status_code == 200 and off.json()["active"] is False and not membership(name).is_active
    renamed = email()
    moved = scim.patch(scim_id, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": renamed})
    assert moved.status_code == 200 and moved.json()["userName"] == renamed
    assert User.objects.filter(email=renamed).exists() and not User.objects.filter(email=name).exists()


def test_active_false_is_refused_at_the_very_next_tools_call(live, scim):
    """Deprovisioning: the member's MCP token works, SCIM deactivates them, and the next call (one
    request, no waiting) is refused; their refresh token is revoked too."""
    name = email()
    scim_id = scim.post(okta_user(name)).json()["id"]
    user = User.objects.get(email=name)
    user.set_password(PASSWORD)  # the member signs in (here with a password) and authorizes an agent
    user.save(update_fields=["password"])
    client = register(live.tenant("sso_a"), client_name="deprovisioned agent")
    person = Browser(live.tenant("sso_a"), name, PASSWORD)
    person.login()
    tokens = obtain_tokens(person, client, scope="crm.read")
    mcp = live.tenant("sso_a").mcp
    before = call(mcp, tokens["access_token"], "crm_search_contacts", {"query": ""})
    assert before.status_code == 200 and not before.json()["result"].get("isError")

    started = time.monotonic()
    assert scim.patch(scim_id, {"op": "replace", "value": {"active": False}}).status_code == 200
    refused = call(mcp, tokens["access_token"], "crm_search_contacts", {"query": ""})
    elapsed = time.monotonic() - started
    assert refused.status_code == 401, refused.text
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    print(f"deprovisioning: SCIM PATCH active false -> next tools/call refused in {elapsed * 1000:.0f} ms, 1 call")
    with schema_context("sso_a"):
        assert not AccessToken.objects.filter(user=user).exists()
        assert not RefreshToken.objects.filter(user=user, revoked__isnull=True).exists()
    assert refresh(client, tokens["refresh_token"]).status_code == 400


def test_delete_ends_the_membership_and_forgets_the_resource(scim):
    name = email()
    scim_id = scim.post(entra_user(name)).json()["id"]
    assert scim.delete(scim_id).status_code == 204
    gone = scim.get(f"Users/{scim_id}")
    assert gone.status_code == 404 and gone.json()["schemas"] == [ERROR] and gone.json()["status"] == "404"
    assert not membership(name).is_active
    assert scim.find(name).json()["totalResults"] == 0
    again = scim.post(entra_user(name))  # a new resource, a new id, the membership back
    assert again.status_code == 201 and again.json()["id"] != scim_id and membership(name).is_active


def test_an_existing_platform_user_gets_a_membership_and_nothing_else_changes(live, scim):
    from tenants.services import add_user

    name = email()
    add_user(slug="sso_b", email=name, password=PASSWORD, role="admin")
    User.objects.filter(email=name).update(full_name="Kept Name")
    created = scim.post(okta_user(name))
    assert created.status_code == 201
    assert User.objects.get(email=name).full_name == "Kept Name"
    assert membership(name).is_active and membership(name).role == "member"
    assert membership(name, "sso_b").role == "admin"

    # shared with another tenant: this tenant's IdP cannot rewrite the user
    scim_id = created.json()["id"]
    for operation in (
        {"op": "replace", "path": "userName", "value": email()},
        {"op": "replace", "path": "name.familyName", "value": "Other"},
        {"op": "replace", "value": {"emails": [{"value": email(), "primary": True}]}},
    ):
        refused = scim.patch(scim_id, operation)
        assert refused.status_code == 400 and refused.json()["scimType"] == "mutability", refused.text
    assert User.objects.get(email=name).full_name == "Kept Name"
    kept = scim.patch(scim_id, {"op": "replace", "path": "externalId", "value": "mine"})  # this tenant's own
    assert kept.status_code == 200 and kept.json()["externalId"] == "mine"
    assert scim.patch(scim_id, {"op": "replace", "path": "active", "value": False}).status_code == 200
    assert membership(name, "sso_b").is_active  # only this tenant's membership ended


def test_a_member_already_here_is_a_409_and_is_found_by_filter(scim):
    existing = "member@sso-a.test"
    conflict = scim.post(okta_user(existing))
    assert conflict.status_code == 409 and conflict.json()["scimType"] == "uniqueness"
    assert scim.find(existing).json()["totalResults"] == 1  # members added elsewhere are listed

    first = scim.post(okta_user(email())).json()
    second = scim.post(okta_user(email())).json()
    taken = scim.patch(second["id"], {"op": "replace", "path": "userName", "value": first["userName"]})
    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness"


def test_paging_and_discovery_documents(scim):
    for _ in range(3):
        scim.post(okta_user(email()))
    total = scim.get("Users").json()["totalResults"]
    page = scim.get("Users", startIndex=2, count=2).json()
    assert page["totalResults"] == total >= 3 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert len(page["Resources"]) == 2 and scim.get("Users", count=0).json()["Resources"] == []
    config = scim.get("ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["filter"]["supported"] and not config["bulk"]["supported"]
    assert scim.get("Schemas").json()["Resources"][0]["id"] == USER
    assert scim.get("ResourceTypes").json()["Resources"][0]["endpoint"] == "/Users"


@pytest.mark.parametrize(
    ("request_args", "status", "scim_type"),
    [
        (("GET", "Users", {"params": {"filter": 'userName co "a"'}}), 400, "invalidFilter"),
        (("GET", "Users", {"params": {"filter": 'title eq "x"'}}), 400, "invalidFilter"),
        (("GET", "Users", {"params": {"startIndex": "one"}}), 400, "invalidValue"),
        (("POST", "Users", {"content": b"{not json"}), 400, "invalidSyntax"),
        (("POST", "Users", {"json": {"schemas": [USER]}}), 400, "invalidValue"),
        (("POST", "Users", {"json": {"schemas": [USER], "userName": "not-an-email"}}), 400, "invalidValue"),
        (
            ("POST", "Users", {"json": {"schemas": [USER], "userName": "a@b.example", "active": "maybe"}}),
            400,
            "invalidValue",
        ),
        (("GET", f"Users/{uuid.uuid4()}", {}), 404, ""),
        (("GET", "Users/not-a-uuid", {}), 404, ""),
        (("PATCH", f"Users/{uuid.uuid4()}", {"json": {"schemas": [PATCH], "Operations": []}}), 404, ""),
    ],
)
def test_refusals_are_scim_error_bodies(scim, request_args, status, scim_type):
    method, path, kwargs = request_args
    response = scim.http.request(method, f"{scim.base}/{path}", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    assert body.get("scimType", "") == scim_type


def test_malformed_patches_are_refused(scim):
    scim_id = scim.post(okta_user(email())).json()["id"]
    for body, scim_type in (
        ({"Operations": [{"op": "replace", "path": "active", "value": False}]}, "invalidSyntax"),
        ({"schemas": [PATCH], "Operations": [{"op": "move", "path": "active", "value": False}]}, "invalidSyntax"),
        (
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]},
            "invalidPath",
        ),
        ({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "userName"}]}, "invalidValue"),
        ({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": "nope"}]}, "invalidValue"),
    ):
        response = scim.http.patch(f"{scim.base}/Users/{scim_id}", json=body)
        assert response.status_code == 400 and response.json()["scimType"] == scim_type, (body, response.text)


def test_the_token_is_per_tenant_hashed_and_rotates_with_a_grace_period(live, scim_token):
    no_token = httpx.get(live.tenant_url("sso_a", "scim/v2/Users"))
    assert no_token.status_code == 401 and no_token.json()["schemas"] == [ERROR]
    assert no_token.headers["www-authenticate"].startswith("Bearer")
    assert Scim(live, "sso_a", "scim_wrong").get("Users").status_code == 401
    other_tenant = issue_token("sso_b")
    assert Scim(live, "sso_a", other_tenant).get("Users").status_code == 401
    assert Scim(live, "sso_b", other_tenant).get("Users").status_code == 200
    with schema_context("sso_b"):
        assert not ScimToken.objects.filter(token_hash__contains=other_tenant).exists()  # only the hash

    rotated = issue_token("sso_b")
    assert Scim(live, "sso_b", rotated).get("Users").status_code == 200
    assert Scim(live, "sso_b", other_tenant).get("Users").status_code == 200  # within the grace period
    with schema_context("sso_b"):
        ScimToken.objects.exclude(retired_at=None).update(retired_at=timezone.now() - timedelta(hours=25))
    assert Scim(live, "sso_b", other_tenant).get("Users").status_code == 401
    assert Scim(live, "sso_b", rotated).get("Users").status_code == 200


def test_ids_are_scoped_to_the_tenant(live, scim):
    scim_id = scim.post(okta_user(email())).json()["id"]
    at_b = Scim(live, "sso_b", issue_token("sso_b"))
    assert at_b.get(f"Users/{scim_id}").status_code == 404
    assert at_b.patch(scim_id, {"op": "replace", "value": {"active": False}}).status_code == 404
    with schema_context("sso_a"):
        assert ScimUser.objects.filter(pk=scim_id).exists()
