"""Runs the checks in an order that works (tenant B is deactivated last), prints them in the order of
the contract as soon as they can be, counts the critical failures, and always cleans up."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lifecycle import checks
from lifecycle.checks import CheckFailed, CheckSkipped
from lifecycle.world import World, cleanup, provision


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[World], None]


# printed in this order (the first six are the checks the lifecycle test was specified with)
CHECKS = [
    Check("challenge via mcp/www_authenticate", checks.challenge_via_tool_result),
    Check("code+pkce exchange", checks.code_pkce_exchange),
    Check("scope validation at tool execution", checks.scope_validation_at_execution),
    Check("refresh rotation", checks.refresh_rotation),
    Check("revoked token path", checks.revoked_token_path),
    Check("tenant-safe identity propagation", checks.identity_propagation),
    Check("refresh-token reuse revokes the family", checks.reuse_revokes_family),
    Check("parallel refreshes keep the session", checks.parallel_refreshes),
    Check("stale membership denied at the next call", checks.stale_membership),
    Check("deactivated tenant denied", checks.deactivated_tenant),
    Check("cross-tenant token replay refused", checks.cross_tenant_replay),
    Check("admin demotion drops admin scopes", checks.admin_demotion),
    Check("step-up keeps earlier grants", checks.step_up_keeps_grants),
    Check("connector refresh, upstream revocation -> reconnect", checks.connector_lifecycle),
    Check("mutating call retried after re-auth applies once", checks.mutating_retry_applies_once),
    Check("deprovisioning revokes at the next call", checks.deprovisioning),
    Check("enterprise-managed authorization (ID-JAG)", checks.enterprise_managed_authorization),
]
RUN_LAST = {"deactivated tenant denied"}  # deactivates tenant B, which the later checks still need


@dataclass(frozen=True)
class Result:
    ok: bool
    reason: str = ""
    critical: bool = False
    skipped: bool = False  # could not be checked on this deployment (not a failure, never "ok")

    def line(self, name: str) -> str:
        if self.skipped:
            return f"[skip] {name}: {self.reason}"
        return f"[ok] {name}" if self.ok else f"[FAIL] {name}: {self.reason}"


def attempt(check: Check, world: World) -> Result:
    try:
        check.run(world)
    except CheckFailed as failed:
        return Result(False, failed.reason, failed.critical)
    except CheckSkipped as skipped:
        return Result(True, skipped.reason, skipped=True)
    except Exception as exc:  # the check could not finish: a failure, not proof of a hole
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # anyio task groups: the cause
            exc = exc.exceptions[0]
        if isinstance(exc, CheckFailed):
            return Result(False, exc.reason, exc.critical)
        return Result(False, f"could not complete ({type(exc).__name__}: {str(exc)[:160]})")
    return Result(True)


CLIENT_LOGGERS = ("httpx", "httpx2", "mcp")  # one INFO line per request of this command's own clients


@contextlib.contextmanager
def quiet_clients() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in CLIENT_LOGGERS}
    for name in levels:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run(*, base_url: str, write: Callable[[str], None], idp_host: str = "127.0.0.1") -> int:
    with quiet_clients():
        return _run(base_url=base_url, write=write, idp_host=idp_host)


def _run(*, base_url: str, write: Callable[[str], None], idp_host: str) -> int:
    """Run every check against ``base_url``; return the number of failed lines."""
    results: dict[str, Result] = {}
    printed = 0

    def flush() -> None:
        nonlocal printed
        while printed < len(CHECKS) and CHECKS[printed].name in results:
            write(results[CHECKS[printed].name].line(CHECKS[printed].name))
            printed += 1

    world: World | None = None
    problems: list[str] = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the new schemas' migration log
            world = provision(base_url, idp_host)
        order = [c for c in CHECKS if c.name not in RUN_LAST] + [c for c in CHECKS if c.name in RUN_LAST]
        for check in order:
            results[check.name] = attempt(check, world)
            flush()
    except Exception as exc:
        reason = f"not run ({type(exc).__name__}: {str(exc)[:160]})"
        for check in CHECKS:
            results.setdefault(check.name, Result(False, reason))
    finally:
        if world is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                problems = cleanup(world)
    flush()
    failed = sum(not r.ok for r in results.values())
    if problems:
        write(f"[FAIL] cleanup: {'; '.join(problems)}")
        failed += 1
    write(f"critical_auth_failures={sum(r.critical for r in results.values())}")
    return failed
