"""Issue 8 item 5, over real HTTP against the live server: every login page gives one answer to every
failure, django-axes locks by account and by address (per tenant), the token endpoint is rate-limited,
and the client address honours BEHIND_PROXY."""

from __future__ import annotations

import html
import itertools
import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from django_tenants.utils import schema_context

from accounts.forms import LOGIN_FAILED
from accounts.lockout import LOCKED_OUT
from tests.conftest import PASSWORD
from tests.oauth_flow import submit_login

WRONG = "not-the-password-123"
_addresses = itertools.count(1)


_run = secrets.token_hex(4)


def fresh_address() -> str:
    """An address (IPv6 documentation range) that no other test and no earlier run used: the rate-limit
    counters live in Redis and outlive a test run."""
    return f"2001:db8:{_run[:4]}:{_run[4:]}::{next(_addresses):x}"


def attempt(url: str, email: str, password: str, *, address: str | None = None) -> httpx.Response:
    """GET the login page (CSRF cookie and token), then POST the credentials, as a browser would."""
    headers = {"X-Forwarded-For": address} if address else {}
    with httpx.Client(follow_redirects=False, timeout=20, headers=headers) as http:
        return submit_login(http, url, email, password)


def error_text(response: httpx.Response) -> str:
    """The form's error as the page shows it (the platform's login template, or the admin's)."""
    found = re.search(r'<ul class="errorlist nonfield"><li>(.*?)</li>', response.text, re.S) or re.search(
        r'<p class="errornote">\s*(.*?)\s*</p>', response.text, re.S
    )
    assert found, (response.status_code, response.text[:800])
    return html.unescape(found.group(1)).strip()


@pytest.fixture
def people(live, unique) -> dict[str, str]:
    """Committed users for one test: a superuser, a user whose acme membership ended, an inactive
    acme member, and a member of both acme and globex."""
    from accounts.models import User
    from tenants.models import Membership
    from tenants.services import add_user

    emails = {
        "superuser": f"root-{unique}@platform.test",
        "ended": f"ended-{unique}@acme.test",
        "inactive": f"inactive-{unique}@acme.test",
        "both": f"both-{unique}@acme.test",
    }
    User.objects.create_superuser(emails["superuser"], PASSWORD)
    for key in ("ended", "inactive", "both"):
        add_user(slug="acme", email=emails[key], password=PASSWORD, role="admin")
    add_user(slug="globex", email=emails["both"], password=PASSWORD, role="member")
    Membership.objects.filter(user__email=emails["ended"]).update(is_active=False)
    User.objects.filter(email=emails["inactive"]).update(is_active=False)
    return emails  # left in place: a user's rows reach into every tenant schema (unique emails)


@pytest.mark.parametrize(
    ("page", "refused", "signs_in"),
    [
        (
            "/t/acme/login/",
            {
                "wrong password": ("member@acme.test", WRONG),
                "unknown account": ("nobody@acme.test", PASSWORD),
                "member of another tenant only": ("member@globex.test", PASSWORD),
                "ended membership": ("ended", PASSWORD),
                "inactive account": ("inactive", PASSWORD),
            },
            "member@acme.test",
        ),
        (
            "/t/acme/admin/login/",
            {
                "wrong password": ("admin@acme.test", WRONG),
                "member, not admin": ("member@acme.test", PASSWORD),
                "admin of another tenant": ("admin@globex.test", PASSWORD),
                "ended membership": ("ended", PASSWORD),
                "platform superuser, not a member": ("superuser", PASSWORD),
            },
            "admin@acme.test",
        ),
        (
            "/admin/login/",
            {
                "wrong password": ("superuser", WRONG),
                "tenant admin, not superuser": ("admin@acme.test", PASSWORD),
                "member, not superuser": ("member@acme.test", PASSWORD),
            },
            "superuser",
        ),
    ],
    ids=["tenant", "tenant-admin", "platform-admin"],
)
def test_login_gives_one_error_for_every_failure(live, people, page, refused, signs_in):
    """``people`` keys stand for that fixture's users; anything else is an email."""
    url = live.url + page
    for what, (who, password) in refused.items():
        response = attempt(url, people.get(who, who), password)
        assert response.status_code == 200, what
        assert error_text(response) == LOGIN_FAILED, what
    assert attempt(url, people.get(signs_in, signs_in), PASSWORD).status_code == 302  # the right answer still works


def test_an_overlong_username_is_an_ordinary_failure(live):
    """axes records the attempt's username in a varchar(255): longer input must not reach it whole."""
    for url in (live.tenant_url("acme", "login/"), live.tenant_url("acme", "admin/login/"), f"{live.url}/admin/login/"):
        response = attempt(url, "A" * 256, WRONG, address=fresh_address())
        assert response.status_code == 200, (url, response.status_code)
        assert error_text(response) == LOGIN_FAILED, url


def _forget_attempts() -> None:
    from axes.models import AccessAttempt

    for schema in ("public", "acme", "globex"):
        with schema_context(schema):
            AccessAttempt.objects.all().delete()


@pytest.fixture
def lockout(settings, live) -> Iterator[None]:
    """A small failure limit and a trusted proxy, so each test picks its own client addresses; the
    failures other tests left (under the suite's high limit) are forgotten before and after."""
    _forget_attempts()
    settings.AXES_FAILURE_LIMIT = 3
    settings.BEHIND_PROXY = True
    yield
    _forget_attempts()


def assert_locked(response: httpx.Response) -> str:
    assert response.status_code == 429, (response.status_code, response.text[:500])
    assert LOCKED_OUT in response.text
    assert int(response.headers["Retry-After"]) > 0
    return response.text


def test_lockout_by_account_is_per_tenant_and_generic(live, lockout, people):
    url = live.tenant_url("acme", "login/")
    victim = people["both"]
    for _ in range(2):
        response = attempt(url, victim, WRONG, address=fresh_address())
        assert response.status_code == 200 and error_text(response) == LOGIN_FAILED
    third = attempt(url, victim, WRONG, address=fresh_address())
    locked_wrong = assert_locked(third)  # the limit-reaching failure already answers with the lockout
    # from yet another address the account stays locked, and the right password changes nothing
    locked_right = assert_locked(attempt(url, victim, PASSWORD, address=fresh_address()))
    assert locked_right == locked_wrong
    # the account is the key, not the address: another account from the same kind of address signs in
    assert attempt(url, "member@acme.test", PASSWORD, address=fresh_address()).status_code == 302
    # and the lockout at acme does not lock the same email at globex
    assert attempt(live.tenant_url("globex", "login/"), victim, PASSWORD, address=fresh_address()).status_code == 302


def test_lockout_by_address_is_per_tenant_and_generic(live, lockout, unique):
    url = live.tenant_url("acme", "login/")
    address = fresh_address()
    for i in range(2):
        assert attempt(url, f"guess{i}-{unique}@acme.test", WRONG, address=address).status_code == 200
    locked_unknown = assert_locked(attempt(url, f"guess2-{unique}@acme.test", WRONG, address=address))
    # a real member with the right password from that address: the same answer
    locked_member = assert_locked(attempt(url, "member@acme.test", PASSWORD, address=address))
    locked_outsider = assert_locked(attempt(url, "member@globex.test", PASSWORD, address=address))
    assert locked_unknown == locked_member == locked_outsider
    # another address is not affected, nor is the same address at another tenant
    assert attempt(url, "member@acme.test", PASSWORD, address=fresh_address()).status_code == 302
    globex = live.tenant_url("globex", "login/")
    assert attempt(globex, "member@globex.test", PASSWORD, address=address).status_code == 302


def test_admin_logins_are_locked_out_too(live, lockout, people):
    for url, email in (
        (live.tenant_url("acme", "admin/login/"), "admin@acme.test"),
        (f"{live.url}/admin/login/", people["superuser"]),
    ):
        address = fresh_address()
        for _ in range(2):
            assert attempt(url, email, WRONG, address=address).status_code == 200
        assert_locked(attempt(url, email, WRONG, address=address))
        assert_locked(attempt(url, email, PASSWORD, address=fresh_address()))  # locked by account as well


def test_a_refused_right_password_counts_like_a_wrong_one(live, lockout):
    """Otherwise the lockout counter would tell a non-member's right password from a wrong one."""
    url = live.tenant_url("acme", "login/")
    address = fresh_address()
    for _ in range(2):
        assert attempt(url, "member@globex.test", PASSWORD, address=address).status_code == 200
    assert_locked(attempt(url, "member@globex.test", PASSWORD, address=address))


# --- client address ---------------------------------------------------------------------------------


def _recorded_address(schema: str, email: str) -> list[str]:
    from axes.models import AccessAttempt

    with schema_context(schema):
        rows = list(AccessAttempt.objects.filter(username=email).values_list("ip_address", flat=True))
        AccessAttempt.objects.filter(username=email).delete()
    return rows


def test_forwarded_for_is_ignored_unless_behind_proxy(live, settings, unique):
    url = live.tenant_url("acme", "login/")
    email = f"addr-{unique}@acme.test"
    settings.BEHIND_PROXY = False
    attempt(url, email, WRONG, address="203.0.113.9")
    assert _recorded_address("acme", email) == ["127.0.0.1"]
    settings.BEHIND_PROXY = True
    # the right-most entry is the one the trusted proxy appended; what the client put left of it is ignored
    attempt(url, email, WRONG, address="10.9.8.7, 203.0.113.9")
    assert _recorded_address("acme", email) == ["203.0.113.9"]


def test_client_address_helper(rf, settings):
    from tenants.http import client_address

    request = rf.get("/", HTTP_X_FORWARDED_FOR="10.0.0.1, 2001:db8::1", REMOTE_ADDR="192.0.2.1")
    settings.BEHIND_PROXY = False
    assert client_address(request) == "192.0.2.1"
    settings.BEHIND_PROXY = True
    assert client_address(request) == "2001:db8::1"
    assert client_address(rf.get("/", HTTP_X_FORWARDED_FOR="not-an-ip", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"
    assert client_address(rf.get("/", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"


def test_registration_rate_limit_keys_on_the_forwarded_address(live, settings):
    from tests.oauth_flow import REDIRECT_URI

    settings.BEHIND_PROXY = True
    settings.OAUTH_DCR_RATE_LIMIT = (1, 3600)
    _away_from_window_edge(3600)
    body = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "application_type": "native"}
    url = live.tenant_url("acme", "register/")
    first, second = fresh_address(), fresh_address()
    assert httpx.post(url, json=body, headers={"X-Forwarded-For": first}).status_code == 201
    assert httpx.post(url, json=body, headers={"X-Forwarded-For": first}).status_code == 429
    assert httpx.post(url, json=body, headers={"X-Forwarded-For": second}).status_code == 201


# --- token endpoint -----------------------------------------------------------------------------------


def _away_from_window_edge(window: int) -> None:
    """The limits count in fixed windows; do not start a count a moment before one ends."""
    left = window - int(time.time()) % window
    if left < 5:
        time.sleep(left + 0.1)


def _token_request(live, address: str, client_id: str, *, basic: bool = False) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": "bogus", "redirect_uri": "http://127.0.0.1:9/callback"}
    kwargs: dict = {"headers": {"X-Forwarded-For": address}, "timeout": 20}
    if basic:
        kwargs["auth"] = (client_id, "some-secret")
    else:
        data["client_id"] = client_id
    return httpx.post(live.tenant_url("acme", "token/"), data=data, **kwargs)


def assert_slow_down(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, (response.status_code, response.text)
    assert response.json()["error"] == "slow_down"
    assert 0 < int(response.headers["Retry-After"]) <= window
    assert response.headers["Cache-Control"] == "no-store"


def test_token_endpoint_rate_limit_per_address(live, settings, unique):
    settings.BEHIND_PROXY = True
    settings.OAUTH_TOKEN_RATE_LIMIT = (3, 3600)
    _away_from_window_edge(3600)
    address = fresh_address()
    for i in range(3):
        response = _token_request(live, address, f"client-{unique}-{i}")
        assert response.status_code in (400, 401), response.text  # DOT's own answer to a bogus code
    assert_slow_down(_token_request(live, address, f"client-{unique}-x"), 3600)
    assert _token_request(live, fresh_address(), f"client-{unique}-y").status_code in (400, 401)


def test_token_endpoint_rate_limit_per_client_id(live, settings, unique):
    settings.BEHIND_PROXY = True
    settings.OAUTH_TOKEN_CLIENT_RATE_LIMIT = (3, 3600)
    _away_from_window_edge(3600)
    client_id = f"client-{unique}"
    _token_request(live, fresh_address(), client_id)
    _token_request(live, fresh_address(), client_id, basic=True)  # HTTP Basic names the same client
    _token_request(live, fresh_address(), client_id)
    assert_slow_down(_token_request(live, fresh_address(), client_id, basic=True), 3600)
    assert _token_request(live, fresh_address(), f"other-{unique}").status_code in (400, 401)
