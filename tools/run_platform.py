"""The run command (``make run``): database, migrations, demo data, then web + Celery worker + beat.

Uses ``DATABASE_URL``/``REDIS_URL`` when set; otherwise an embedded PostgreSQL under var/pgdata and
Celery's filesystem broker under var/. Ctrl-C stops every child process (and the embedded database).

In production (``DJANGO_ENV=production``) it reads nothing from ``var/dev.env``, starts no embedded
database and creates no demo tenants: every required setting must come from the environment, or it
refuses to start. In development mode (``DJANGO_ENV`` unset) it binds only a loopback ``HOST`` unless
``ALLOW_DEV_ON_PUBLIC_INTERFACE=1`` says otherwise: development mode answers any Host header and sends
cookies without ``Secure``, which is fine on 127.0.0.1 and not on a network.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.dev_secrets import PRODUCTION_REQUIRED, VAR_DIR, ensure_dev_env  # noqa: E402
from config.embedded_db import embedded_database_url, stop_embedded_database  # noqa: E402

BIN = Path(sys.executable).parent


# threads: the jobs wait on PostgreSQL and on providers, not on the CPU (docs/benchmarks.md,
# "Proactive refresh job": 4 threads 78 s, 8 threads 30 s for 10,000 due accounts)
CELERY_WORKER_POOL = ("--pool", "threads", "--concurrency", os.environ.get("CELERY_CONCURRENCY", "8"))


def bind_refusal(host: str, environ: dict[str, str]) -> str | None:
    """Why ``host`` must not be bound in this environment, or None when it may."""
    if environ.get("DJANGO_ENV", "development") == "production" or environ.get("ALLOW_DEV_ON_PUBLIC_INTERFACE") == "1":
        return None
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"refusing to bind {host!r} in development mode (DJANGO_ENV is not 'production'): development mode "
        "sends cookies without Secure and has demo users. Use HOST=127.0.0.1, set DJANGO_ENV=production, "
        "or set ALLOW_DEV_ON_PUBLIC_INTERFACE=1 to do it anyway."
    )


def gunicorn_command(host: str, port: int) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"{host}:{port}",
        "--workers",
        os.environ.get("WEB_CONCURRENCY", "2"),
        "--config",
        "python:config.gunicorn",  # access log without credentials or query strings
    ]


def single_web(host: str, port: int) -> list[subprocess.Popen]:
    """The web tier of ``make run``: one gunicorn on ``port``."""
    return [subprocess.Popen(gunicorn_command(host, port))]


def main(web: Callable[[str, int], list[subprocess.Popen]] | None = None) -> int:
    """``web``: starts the processes that answer on ``host:port`` (default: one gunicorn;
    ``tools/run_affine.py``: HAProxy and gunicorn groups)."""
    os.chdir(ROOT)
    host = os.environ.get("HOST", "127.0.0.1")
    refusal = bind_refusal(host, dict(os.environ))
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    production = os.environ.get("DJANGO_ENV", "development") == "production"
    if production:
        if missing := [key for key in PRODUCTION_REQUIRED if not os.environ.get(key)]:
            print(f"production refuses to start without: {', '.join(missing)}", file=sys.stderr)
            return 2
    else:  # development: the checkout's generated secrets, never in production
        for key, value in ensure_dev_env().items():
            os.environ.setdefault(key, value)
    embedded = not os.environ.get("DATABASE_URL")
    if embedded:
        os.environ["DATABASE_URL"] = embedded_database_url()
    port = os.environ.setdefault("PORT", "8000")
    base = os.environ.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    started = time.monotonic()
    metrics_dir = prepare_metrics_dir(os.environ)

    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate_schemas", "--executor", "standard", "-v", "0"], check=True)
    if not production:
        subprocess.run([*manage, "bootstrap_demo"], check=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], check=True)  # WhiteNoise serves var/static

    children = [
        *(web or single_web)(host, int(port)),
        subprocess.Popen([str(BIN / "celery"), "-A", "config", "worker", "-l", "info", *CELERY_WORKER_POOL]),
        subprocess.Popen([str(BIN / "celery"), "-A", "config", "beat", "-l", "info"]),
    ]

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded:
            stop_embedded_database()
        for stale in metrics_dir.glob("*.db"):  # the samples of processes that are gone
            stale.unlink()

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    # installed explicitly: a shell starts background jobs with SIGINT ignored
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    try:
        if production:  # no demo tenant to probe; the deployment's own checks watch {base}/healthz
            print(f"\nPlatform started (production): {base}/admin/, health {base}/healthz", flush=True)
        else:
            _wait_healthy(f"http://127.0.0.1:{port}/t/acme/healthz", children)
            _print_development_urls(base, started)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a child process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


def _print_development_urls(base: str, started: float) -> None:
    print(
        f"\nPlatform up in {time.monotonic() - started:.1f}s\n"
        f"  platform admin     {base}/admin/   (create a superuser: .venv/bin/python manage.py createsuperuser)\n"
        f"  acme health        {base}/t/acme/healthz\n"
        f"  acme MCP endpoint  {base}/t/acme/mcp\n"
        f"  acme tenant admin  {base}/t/acme/admin/\n"
        f"  globex             {base}/t/globex/\n"
        f"  demo passwords     var/dev.env (DEMO_ADMIN_PASSWORD, DEMO_MEMBER_PASSWORD)\n"
        f"  metrics            {base}/metrics   (Authorization: Bearer METRICS_TOKEN from var/dev.env)\n"
        "Ctrl-C stops everything.",
        flush=True,
    )


def prepare_metrics_dir(environ) -> Path:
    """Prometheus multiprocess mode for gunicorn and Celery (observability.metrics): one directory all
    of them write to, emptied at start so counters do not carry over from an earlier run."""
    directory = Path(environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
    if directory.exists():
        for stale in directory.glob("*.db"):
            stale.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _wait_healthy(url: str, children: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise SystemExit("a child process exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not become healthy in {timeout:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
