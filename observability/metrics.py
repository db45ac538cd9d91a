"""The platform's Prometheus metrics, and the only place that creates them.

Multiprocess mode (prometheus-client): when ``PROMETHEUS_MULTIPROC_DIR`` is set (``make run`` sets it
for gunicorn and Celery, and empties it at start), every process writes its samples to files in that
directory and ``/metrics`` sums them, so the figures are right whichever worker served a request or
ran a job. Without it (tests, ``runserver``) the process-local default registry is used.

Labels carry the tenant slug at most, plus values from closed sets named here (an auth class, a
channel, an outcome word, a declared tool name, a registered task name) and, for the connectors'
per-provider series, the provider's key (a slug the tenant admin chose, one per configured provider).
Never a user, a token, a client id or secret, or free text: ``tests/test_metrics.py`` checks every
exported metric's label set against ``ALLOWED_LABELS``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger(__name__)

ALLOWED_LABELS = frozenset(
    {"tenant", "class", "channel", "grant_type", "outcome", "reason", "tool", "job", "result", "limit", "provider"}
)

CHALLENGES = Counter(
    "platform_auth_challenges", "Auth challenges answered, by class and channel (http or tool_result)",
    ["tenant", "class", "channel"],
)
TOKEN_ISSUED = Counter(
    "platform_oauth_tokens_issued", "Token endpoint answers by grant type and outcome (issued or the OAuth error)",
    ["tenant", "grant_type", "outcome"],
)
TOKEN_REFRESH = Counter(
    "platform_oauth_refresh", "Refresh-token presentations: rotated, duplicate (idempotent answer), reuse, refused",
    ["tenant", "outcome"],
)
TOKEN_REUSE = Counter(
    "platform_oauth_reuse_detected", "Replays that revoked a token family (refresh_token or authorization_code)",
    ["tenant", "reason"],
)
TOKEN_REVOCATIONS = Counter(
    "platform_oauth_revocations",
    "Token revocations by reason (revoke_endpoint requests, refresh_token reuse, authorization_code replay, "
    "membership_ended and tenant_deactivated: access tokens revoked)",
    ["tenant", "reason"],
)
CONNECTOR_REFRESH = Counter(
    "platform_connector_refresh", "Upstream token refreshes by outcome (ok, needs_reauth, unavailable, error)",
    ["tenant", "outcome"],
)
CONNECTOR_REFRESH_SECONDS = Histogram(
    "platform_connector_refresh_seconds", "Time spent asking the provider for a refreshed token",
    ["tenant", "outcome"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROACTIVE_REFRESH_HEADROOM = Histogram(
    "platform_connector_proactive_refresh_headroom_seconds",
    "Proactive-refresh lag: seconds the upstream token still had when the job refreshed it (<= 0: late)",
    ["tenant"], buckets=(0, 15, 30, 60, 120, 180, 240, 300, 600),
)
PROVIDER_REFRESH = Counter(
    "platform_connector_provider_refreshes",
    "Upstream token refreshes per provider by outcome (ok, needs_reauth, unavailable, error)",
    ["tenant", "provider", "outcome"],
)
PROVIDER_FAILURES = Counter(
    "platform_connector_provider_failures",
    "Failed calls to a provider's token endpoint by class (rate_limited, server_error, timeout, "
    "connection_failed, invalid_response)",
    ["tenant", "provider", "class"],
)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
BREAKER_STATE = Gauge(
    "platform_connector_breaker_state",
    "The provider's breaker in the tenant: 0 closed, 1 half-open (one probe in flight), 2 open",
    ["tenant", "provider"],
    multiprocess_mode="mostrecent",
)
CROSS_TENANT_DENIALS = Counter(
    "platform_cross_tenant_denials", "Requests refused because the caller does not belong to the tenant",
    ["tenant", "reason"],
)
TOOL_CALLS = Counter(
    "platform_tool_calls", "tools/call by tool and outcome (ok, tool_error, connector, denied)",
    ["tenant", "tool", "outcome"],
)
SWEEP_RESULTS = Counter(
    "platform_job_results", "Periodic per-tenant job results (items by result word)",
    ["tenant", "job", "result"],
)

RATE_LIMIT_UNAVAILABLE = Counter(
    "platform_rate_limit_unavailable",
    "Rate-limit checks skipped (the request allowed) because the counter store, Redis, did not answer",
    ["tenant", "limit"],
)

LOGIN_LIMITS = Counter(
    "platform_login_limits",
    "Login limits reached (tenants.login_limits): an address locked, or an account's logins throttled",
    ["tenant", "reason"],
)

ALL = (
    CHALLENGES, TOKEN_ISSUED, TOKEN_REFRESH, TOKEN_REUSE, TOKEN_REVOCATIONS, CONNECTOR_REFRESH,
    CONNECTOR_REFRESH_SECONDS, PROACTIVE_REFRESH_HEADROOM, CROSS_TENANT_DENIALS, TOOL_CALLS, SWEEP_RESULTS,
    RATE_LIMIT_UNAVAILABLE, LOGIN_LIMITS, PROVIDER_REFRESH, PROVIDER_FAILURES, BREAKER_STATE,
)


def exported_names() -> set[str]:
    """Every series name the platform exports: counters as ``*_total``, histograms as ``*_bucket``,
    ``*_sum`` and ``*_count`` (what PromQL expressions can name)."""
    names: set[str] = set()
    for metric in ALL:
        base = metric._name
        if isinstance(metric, Gauge):
            names.add(base)
            continue
        suffixes = ("total",) if isinstance(metric, Counter) else ("bucket", "sum", "count")
        names.update(f"{base}_{suffix}" for suffix in suffixes)
    return names


def exposition() -> bytes:
    """The text exposition: summed over every process's files in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(DEFAULT_REGISTRY)


# --- recording helpers: never raise into the caller ------------------------------------------------
def _safe(fn):
    """Metrics never change an auth decision: a failure to record is logged, not raised."""

    def wrapper(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception:
            logger.exception("metrics: could not record %s", fn.__name__)

    return wrapper


@_safe
def challenge(tenant: str, auth_class: str, channel: str) -> None:
    CHALLENGES.labels(tenant, auth_class, channel).inc()
    if auth_class == "TENANT_MISMATCH":
        CROSS_TENANT_DENIALS.labels(tenant, "not_a_member").inc()


@_safe
def token_answer(tenant: str, grant_type: str, outcome: str) -> None:
    TOKEN_ISSUED.labels(tenant, grant_type, outcome).inc()


@_safe
def refresh(tenant: str, outcome: str) -> None:
    TOKEN_REFRESH.labels(tenant, outcome).inc()


@_safe
def reuse(tenant: str, reason: str) -> None:
    TOKEN_REUSE.labels(tenant, reason).inc()
    TOKEN_REVOCATIONS.labels(tenant, reason).inc()


@_safe
def revocation(tenant: str, reason: str, amount: int = 1) -> None:
    TOKEN_REVOCATIONS.labels(tenant, reason).inc(max(amount, 0))


@_safe
def tool_call(tenant: str, tool: str, outcome: str) -> None:
    TOOL_CALLS.labels(tenant, tool, outcome).inc()


@_safe
def cross_tenant(tenant: str, reason: str) -> None:
    CROSS_TENANT_DENIALS.labels(tenant, reason).inc()


@_safe
def connector_refresh(tenant: str, outcome: str, seconds: float) -> None:
    CONNECTOR_REFRESH.labels(tenant, outcome).inc()
    CONNECTOR_REFRESH_SECONDS.labels(tenant, outcome).observe(seconds)


@_safe
def provider_refresh(tenant: str, provider: str, outcome: str) -> None:
    PROVIDER_REFRESH.labels(tenant, provider, outcome).inc()


@_safe
def provider_failure(tenant: str, provider: str, failure_class: str) -> None:
    PROVIDER_FAILURES.labels(tenant, provider, failure_class).inc()


@_safe
def breaker_state(tenant: str, provider: str, state: str) -> None:
    BREAKER_STATE.labels(tenant, provider).set(BREAKER_STATES.get(state, 0))


@_safe
def proactive_headroom(tenant: str, seconds: float) -> None:
    PROACTIVE_REFRESH_HEADROOM.labels(tenant).observe(seconds)


@_safe
def job_result(tenant: str, job: str, result: str, amount: float) -> None:
    if amount >= 0:  # zero too: the series shows the job ran
        SWEEP_RESULTS.labels(tenant, job, result).inc(amount)


@_safe
def rate_limit_unavailable(tenant: str, limit: str) -> None:
    RATE_LIMIT_UNAVAILABLE.labels(tenant, limit).inc()


@_safe
def login_limit(tenant: str, reason: str) -> None:
    LOGIN_LIMITS.labels(tenant, reason).inc()


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed[0]`` is the duration in seconds."""
    box = [0.0]
    started = time.monotonic()
    try:
        yield box
    finally:
        box[0] = time.monotonic() - started
