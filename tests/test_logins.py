"""Over real HTTP against the live server: every login page gives one answer to every refusal;
django-axes locks a (username, address) pair, an address is locked only at a far higher count and an
account failing from many addresses is throttled, never locked (``tenants.login_limits``), per tenant
and on the platform admin; the token endpoint and registration are rate-limited; the client address
honours BEHIND_PROXY, and an IPv6 client counts as its /64."""

from __future__ import annotations

import html
import ipaddress
import itertools
import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from django_tenants.utils import schema_context

from accounts.forms import LOGIN_FAILED
from tests.conftest import PASSWORD
from tests.oauth_flow import submit_login

WRONG = "not-the-password-123"
_addresses = itertools.count(1)


_run = secrets.token_hex(4)


def fresh_address() -> str:
    """An address (IPv6 documentation range) in a /64 that no other test and no earlier run used: the
    rate-limit counters live in Redis and outlive a test run, and an IPv6 client counts as its /64."""
    return f"2001:db8:{_run[:4]}:{next(_addresses):x}::{_run[4:]}"


def same_network(address: str, host: int) -> str:
    """Another address in ``address``'s /64."""
    return address.rsplit("::", 1)[0] + f"::{host:x}"


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


# each login page, and who signs in there (a ``people`` key or an email)
LOGIN_PAGES = {
    "tenant": ("/t/acme/login/", "member@acme.test"),
    "tenant-admin": ("/t/acme/admin/login/", "admin@acme.test"),
    "platform-admin": ("/admin/login/", "superuser"),
}
# who is refused on which page with the right password, and why (besides a wrong password)
REFUSED = [
    ("tenant", "nobody@acme.test", "unknown account"),
    ("tenant", "member@globex.test", "member of another tenant only"),
    ("tenant", "ended", "ended membership"),
    ("tenant", "inactive", "inactive account"),
    ("tenant-admin", "member@acme.test", "member, not admin"),
    ("tenant-admin", "admin@globex.test", "admin of another tenant"),
    ("tenant-admin", "ended", "ended membership"),
    ("tenant-admin", "superuser", "platform superuser, not a member"),
    ("platform-admin", "admin@acme.test", "tenant admin, not superuser"),
    ("platform-admin", "member@acme.test", "member, not superuser"),
]


@pytest.mark.parametrize("login_page", LOGIN_PAGES)
def test_login_gives_one_error_for_every_failure(live, people, login_page):
    """``people`` keys stand for that fixture's users; anything else is an email."""
    page, signs_in = LOGIN_PAGES[login_page]
    url = live.url + page
    refused = [(signs_in, WRONG, "wrong password")]
    refused += [(who, PASSWORD, what) for where, who, what in REFUSED if where == login_page]
    for who, password, what in refused:
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
    """The default limits and a trusted proxy, so each test picks its own client addresses; the
    failures other tests left (under the suite's high limits) are forgotten before and after."""
    _forget_attempts()
    settings.AXES_FAILURE_LIMIT = 5  # LOGIN_FAILURE_LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 100
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 20
    settings.LOGIN_ACCOUNT_THROTTLE_SECONDS = 30
    settings.BEHIND_PROXY = True
    yield
    _forget_attempts()


def assert_locked(response: httpx.Response) -> str:
    assert response.status_code == 429, (response.status_code, response.text[:500])
    assert LOGIN_FAILED in html.unescape(response.text)  # the login pages' one generic answer
    assert int(response.headers["Retry-After"]) > 0
    return response.text


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert error_text(response) == LOGIN_FAILED


# each login page and an account that may sign in there (``people`` keys): the tenant's page, its admin
# (per tenant counters, in the tenant's schema) and the platform admin (public schema)
PAGES = pytest.mark.parametrize(
    ("page", "who"),
    [("/t/acme/login/", "both"), ("/t/acme/admin/login/", "both"), ("/admin/login/", "superuser")],
    ids=["tenant", "tenant-admin", "platform-admin"],
)


@PAGES
def test_failures_for_other_accounts_from_one_address_leave_a_member_signing_in(live, lockout, people, page, who):
    """An office NAT: twenty failed logins for other emails from one address lock nobody out."""
    url, address = live.url + page, fresh_address()
    for i in range(20):
        assert_refused(attempt(url, f"someone{i}-{secrets.token_hex(3)}@acme.test", WRONG, address=address))
    assert attempt(url, people[who], PASSWORD, address=address).status_code == 302


@PAGES
def test_failures_for_an_email_lock_that_pair_only(live, lockout, people, page, who):
    """Six failed logins for a member's email from one address: that (email, address) pair is locked
    (the pair limit still holds, the fifth failure already answers 429, the right password too), and
    the member's right password from another address signs in."""
    url, address, email = live.url + page, fresh_address(), people[who]
    for _ in range(4):
        assert_refused(attempt(url, email, WRONG, address=address))
    locked = assert_locked(attempt(url, email, WRONG, address=address))
    assert assert_locked(attempt(url, email, WRONG, address=address)) == locked
    assert assert_locked(attempt(url, email, PASSWORD, address=address)) == locked
    assert attempt(url, email, PASSWORD, address=fresh_address()).status_code == 302
    # another account from the locked pair's address is not affected either
    other = {"/t/acme/login/": "member@acme.test", "/t/acme/admin/login/": "admin@acme.test"}.get(page)
    if other is not None:
        assert attempt(url, other, PASSWORD, address=address).status_code == 302


def test_an_address_is_locked_at_the_address_limit_with_its_whole_ipv6_64(live, lockout, settings, unique):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    _away_from_window_edge(900, margin=60)  # the failures count in one LOGIN_LOCKOUT_SECONDS window
    url = live.tenant_url("acme", "login/")
    address = fresh_address()
    for i in range(8):  # from eight addresses of one /64: one client
        assert_refused(attempt(url, f"guess{i}-{unique}@acme.test", WRONG, address=same_network(address, i + 1)))
    locked = assert_locked(attempt(url, "member@acme.test", PASSWORD, address=same_network(address, 99)))
    assert assert_locked(attempt(url, "member@globex.test", PASSWORD, address=address)) == locked
    assert attempt(url, "member@acme.test", PASSWORD, address=fresh_address()).status_code == 302  # another /64
    globex = live.tenant_url("globex", "login/")  # the same address at another tenant
    assert attempt(globex, "member@globex.test", PASSWORD, address=address).status_code == 302
    with schema_context("acme"):
        from observability.models import AuthEvent

        alert = AuthEvent.objects.filter(event="login_limit", outcome="address").order_by("-id").first()
    assert alert is not None
    assert ipaddress.ip_address(alert.source_address) in ipaddress.ip_network(f"{address}/64", strict=False)


def test_an_account_failing_from_many_addresses_is_throttled_not_locked(live, lockout, settings, people):
    """LOGIN_ACCOUNT_FAILURE_LIMIT failures for one email from as many addresses: an alert (audit trail,
    health page, metric); then one attempt per LOGIN_ACCOUNT_THROTTLE_SECONDS goes through (the right
    password signs in: never locked), and the others get the generic error at once with Retry-After."""
    from accounts.models import User
    from observability.models import AuthEvent
    from tests.oauth_flow import Browser
    from tests.observability_helpers import samples, scrape, value

    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 4
    _away_from_window_edge(900, margin=60)  # the failures count in one LOGIN_LOCKOUT_SECONDS window
    url, email = live.tenant_url("acme", "login/"), people["both"]
    before = value(samples(scrape(live.url)), "platform_login_limits_total", tenant="acme", reason="account")
    for _ in range(4):
        assert_refused(attempt(url, email, WRONG, address=fresh_address()))
    _away_from_window_edge(settings.LOGIN_ACCOUNT_THROTTLE_SECONDS)
    assert attempt(url, email, PASSWORD, address=fresh_address()).status_code == 302  # this interval's attempt
    throttled = attempt(url, email, PASSWORD, address=fresh_address())  # the right password, at once after it
    assert_refused(throttled)
    assert 0 < int(throttled.headers["Retry-After"]) <= settings.LOGIN_ACCOUNT_THROTTLE_SECONDS
    assert attempt(url, "member@acme.test", PASSWORD, address=fresh_address()).status_code == 302  # others not

    after = value(samples(scrape(live.url)), "platform_login_limits_total", tenant="acme", reason="account")
    assert after - before == 1
    with schema_context("acme"):
        alerts = list(AuthEvent.objects.filter(event="login_limit", outcome="account", user_id=User.objects.get(
            email=email).pk))  # fmt: skip
    assert len(alerts) == 1
    admin = Browser(live.tenant("acme"), "admin@acme.test")
    admin.login("admin/login/")
    page = admin.http.get(live.tenant_url("acme", "admin/observability/authevent/health/"))
    assert page.status_code == 200 and "Login limits reached" in page.text and "accounts throttled" in page.text


def test_a_refused_right_password_counts_like_a_wrong_one(live, lockout):
    """Otherwise the lockout counter would tell a non-member's right password from a wrong one."""
    url = live.tenant_url("acme", "login/")
    address = fresh_address()
    for _ in range(4):
        assert_refused(attempt(url, "member@globex.test", PASSWORD, address=address))
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


def test_address_bucket_is_an_ipv6_clients_64(rf):
    from tenants.http import address_bucket

    assert address_bucket(rf.get("/", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"
    assert address_bucket(rf.get("/", REMOTE_ADDR="2001:db8:1:2:aaaa:bbbb:cccc:dddd")) == "2001:db8:1:2::"
    assert address_bucket(rf.get("/", REMOTE_ADDR="2001:db8:1:2::1")) == "2001:db8:1:2::"
    assert address_bucket(rf.get("/", REMOTE_ADDR="2001:db8:1:3::1")) == "2001:db8:1:3::"
    assert address_bucket(rf.get("/", REMOTE_ADDR="::ffff:192.0.2.7")) == "192.0.2.7"


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
    assert httpx.post(url, json=body, headers={"X-Forwarded-For": same_network(first, 9)}).status_code == 429
    assert httpx.post(url, json=body, headers={"X-Forwarded-For": second}).status_code == 201


# --- token endpoint -----------------------------------------------------------------------------------


def _away_from_window_edge(window: int, margin: int = 5) -> None:
    """The limits count in fixed windows; do not start a count a moment before one ends."""
    left = window - int(time.time()) % window
    if left < margin:
        time.sleep(left + 0.1)


def _token_request(live, address: str, client_id: str, *, basic: bool = False) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": "bogus", "redirect_uri": "http://127.0.0.1:9/callback"}
    kwargs: dict = {"headers": {"X-Forwarded-For": address}, "timeout": 20}
    if basic:
        kwargs["auth"] = (client_id, "some-secret")
    else:
        data["client_id"] = client_id
    return httpx.post(live.tenant_url("acme", "token/"), data=data, **kwargs)


def assert_unknown_client(response: httpx.Response) -> None:
    """No client has that id: 401 ``invalid_client`` (RFC 6749 5.2), before the code is looked at."""
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.json()["error"] == "invalid_client"


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
        assert_unknown_client(response)  # the endpoint's own answer, under the limit
    assert_slow_down(_token_request(live, address, f"client-{unique}-x"), 3600)
    assert_slow_down(_token_request(live, same_network(address, 7), f"client-{unique}-z"), 3600)  # its /64
    assert_unknown_client(_token_request(live, fresh_address(), f"client-{unique}-y"))


def test_token_endpoint_rate_limit_per_client_id(live, settings, unique):
    settings.BEHIND_PROXY = True
    settings.OAUTH_TOKEN_CLIENT_RATE_LIMIT = (3, 3600)
    _away_from_window_edge(3600)
    client_id = f"client-{unique}"
    _token_request(live, fresh_address(), client_id)
    _token_request(live, fresh_address(), client_id, basic=True)  # HTTP Basic names the same client
    _token_request(live, fresh_address(), client_id)
    assert_slow_down(_token_request(live, fresh_address(), client_id, basic=True), 3600)
    assert_unknown_client(_token_request(live, fresh_address(), f"other-{unique}"))
