"""``manage.py auth_lifecycle_test`` against the live test server: every line [ok] on the platform as
it is, and a [FAIL] line, a non-zero exit and a critical count when a property is turned off."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from lifecycle.runner import CHECKS
from tenants.models import Tenant

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module", autouse=True)
def celery_worker(live_server_url):
    """The deployment's worker: "deprovisioning revokes at the next call" waits for the connectors'
    sweep, queued when the membership ends, to revoke the upstream grant (a real worker process)."""
    from tests.celery_procs import workers

    with workers(1) as started:
        yield started

CONTRACT = [
    "[ok] challenge via mcp/www_authenticate",
    "[ok] code+pkce exchange",
    "[ok] scope validation at tool execution",
    "[ok] refresh rotation",
    "[ok] revoked token path",
    "[ok] tenant-safe identity propagation",
]
REUSE = "refresh-token reuse revokes the family"


def run_command(base_url: str) -> tuple[list[str], CommandError | None]:
    out = io.StringIO()
    try:
        call_command("auth_lifecycle_test", base_url=base_url, stdout=out)
    except CommandError as exc:
        return out.getvalue().splitlines(), exc
    return out.getvalue().splitlines(), None


def throwaway_tenants() -> list[str]:
    with schema_context("public"):
        return list(Tenant.objects.filter(schema_name__startswith="lifecycle_").values_list("schema_name", flat=True))


def test_every_line_is_ok_and_nothing_is_left_behind(live, monkeypatch):
    """Also the observability of one full run: its metrics and its audit events. The audit
    rows live in the throwaway schemas, so they are read just before the command drops them."""
    from accounts.models import User
    from lifecycle import runner
    from observability.models import AuthEvent
    from tests.observability_helpers import samples, scrape

    audited: dict[str, list[tuple[str, str, str]]] = {}
    real_cleanup = runner.cleanup

    def read_the_trail_then_clean_up(world):
        for slug in world.slugs:
            with schema_context(slug):
                audited[slug] = list(AuthEvent.objects.values_list("event", "auth_class", "outcome"))
        return real_cleanup(world)

    monkeypatch.setattr(runner, "cleanup", read_the_trail_then_clean_up)
    before = samples(scrape(live.url))
    lines, error = run_command(live.url)
    assert error is None, "\n".join(lines)
    assert lines[:6] == CONTRACT
    assert lines[6:-1] == [f"[ok] {check.name}" for check in CHECKS[6:]]
    assert len(CHECKS) == 17
    assert lines[-1] == "critical_auth_failures=0"
    assert throwaway_tenants() == []
    assert not User.objects.filter(email__endswith="@lifecycle.test").exists()

    after, slugs = samples(scrape(live.url)), set(audited)
    assert len(slugs) == 2

    def delta(name: str, **labels: str) -> float:
        """The increase of ``name`` with ``labels`` summed over the run's two tenants."""
        return sum(
            value - before.get(key, 0.0)
            for key, value in after.items()
            if key[0] == name and dict(key[1]).get("tenant") in slugs and labels.items() <= dict(key[1]).items()
        )

    assert delta("platform_oauth_tokens_issued_total", grant_type="authorization_code", outcome="issued") >= 10
    assert delta("platform_oauth_refresh_total", outcome="rotated") >= 3
    assert delta("platform_oauth_refresh_total", outcome="duplicate") >= 1  # parallel refreshes
    assert delta("platform_oauth_reuse_detected_total", reason="refresh_token") >= 1
    assert delta("platform_auth_challenges_total", **{"class": "INSUFFICIENT_SCOPE"}, channel="tool_result") >= 1
    assert delta("platform_auth_challenges_total", **{"class": "INSUFFICIENT_SCOPE"}, channel="http") >= 1
    assert delta("platform_auth_challenges_total", **{"class": "INVALID_TOKEN"}) >= 1
    assert delta("platform_tool_calls_total", outcome="ok") >= 5
    assert delta("platform_connector_refresh_total", outcome="ok") >= 1
    assert delta("platform_oauth_tokens_issued_total", grant_type="jwt_bearer", outcome="issued") >= 1

    trail = [row for rows in audited.values() for row in rows]
    assert ("refresh_reuse", "", "family_revoked") in trail, trail
    assert ("challenge", "INSUFFICIENT_SCOPE", "tool_result") in trail, trail
    assert ("challenge", "INSUFFICIENT_SCOPE", "http") in trail, trail
    assert ("challenge", "INVALID_TOKEN", "http") in trail, trail  # revoked, stale membership, replay
    assert sum(1 for row in trail if row == ("token.authorization_code", "", "issued")) >= 10, trail
    assert ("id_jag", "", "accepted_email") in trail and ("id_jag", "", "wrong_audience") in trail, trail
    assert ("id_jag", "", "not_a_member") in trail, trail


def test_a_deployment_refusing_plain_http_issuers_skips_the_id_jag_line(live, settings):
    """Production refuses a plain-http identity provider (``identity.outbound``): the line says why it
    is skipped instead of weakening that refusal, and is neither ok nor a failure."""
    from lifecycle.runner import attempt
    from lifecycle.world import cleanup, provision

    settings.IDENTITY_ALLOW_LOOPBACK_HTTP = False
    check = next(c for c in CHECKS if c.name == "enterprise-managed authorization (ID-JAG)")
    world = provision(live.url)
    try:
        result = attempt(check, world)
    finally:
        assert cleanup(world) == []
    line = result.line(check.name)
    assert line.startswith("[skip] enterprise-managed authorization (ID-JAG): this deployment refuses"), line
    assert "[insecure_url]" in line and result.ok and not result.critical


def test_reuse_protection_turned_off_is_a_critical_failure(live, monkeypatch):
    """The deliberate break: the family revocation on refresh-token reuse does nothing."""
    from oauth2_provider.models import RefreshToken

    monkeypatch.setattr(RefreshToken, "revoke_family", classmethod(lambda cls, token_family: None))
    lines, error = run_command(live.url)
    assert error is not None and error.returncode == 1, lines
    assert lines[:6] == CONTRACT  # the break is seen where it is, and only there
    failed = [line for line in lines if line.startswith("[FAIL]")]
    assert len(failed) == 1 and failed[0].startswith(f"[FAIL] {REUSE}: "), lines
    critical = int(lines[-1].removeprefix("critical_auth_failures="))
    assert critical >= 1
    assert throwaway_tenants() == []  # cleaned up after a failure too


def test_an_unreachable_deployment_fails_every_line(live):
    """Nothing is reported as ok when the checks could not run."""
    lines, error = run_command("http://127.0.0.1:9")
    assert error is not None and error.returncode == 1
    assert len(lines) == len(CHECKS) + 1 and all(line.startswith("[FAIL] ") for line in lines[:-1]), lines
    assert throwaway_tenants() == []


def test_scopes_unchecked_at_execution_fail_every_line_that_relies_on_them(live, monkeypatch):
    """A second deliberate break: the endpoint stops checking scopes when a tool runs."""
    from mcp_tools import dispatch, execution

    def unchecked(caller, policy):
        return None if caller else execution.required_failure(caller, policy)

    monkeypatch.setattr(dispatch, "required_failure", unchecked)
    lines, error = run_command(live.url)
    assert error is not None and error.returncode == 1, lines
    failed = {line.split(":")[0].removeprefix("[FAIL] ") for line in lines if line.startswith("[FAIL]")}
    assert failed >= {
        "challenge via mcp/www_authenticate",
        "scope validation at tool execution",
        "admin demotion drops admin scopes",
        "step-up keeps earlier grants",
    }, lines
    assert "[ok] code+pkce exchange" in lines and "[ok] refresh-token reuse revokes the family" in lines
    assert int(lines[-1].removeprefix("critical_auth_failures=")) >= 3
