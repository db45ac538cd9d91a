"""Shared set-up for the benchmark scripts: environment, database, a gunicorn on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from probe.ready import stop_process, wait_until_up

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["BENCH_VIEWS"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config.dev_secrets import ensure_dev_env

    for key, value in ensure_dev_env().items():
        os.environ.setdefault(key, value)
    if not os.environ.get("DATABASE_URL"):
        from config.embedded_db import embedded_database_url

        os.environ["DATABASE_URL"] = embedded_database_url()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "-v", "0")
    with open(os.devnull, "w") as devnull:
        call_command("bootstrap_demo", stdout=devnull)


# gunicorn worker classes the benchmarks can switch between (bench/mcp_throughput.py --worker-class)
WORKER_CLASSES = {
    "sync": ("sync", "config.wsgi"),
    "gthread": ("gthread", "config.wsgi"),
    "uvicorn": ("uvicorn.workers.UvicornWorker", "config.asgi"),
}


@contextmanager
def gunicorn(
    port: int,
    workers: int = 2,
    *,
    worker_class: str = "sync",
    threads: int = 1,
    root: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``root``: serve the code of another checkout (e.g. main's worktree, for before/after in one run)
    with this virtualenv; the database and environment are this run's. ``env``: variables set last
    (over the benchmark defaults, e.g. ``CONN_MAX_AGE``)."""
    base = f"http://127.0.0.1:{port}"
    # the token benchmark exchanges hundreds of codes from one address: lift the token rate limits
    # (the limits' own cost, a cache increment or two, stays in the measurement)
    limits = {"OAUTH_TOKEN_RATE_LIMIT": "1000000", "OAUTH_TOKEN_CLIENT_RATE_LIMIT": "1000000"}
    # under ASGI every request runs in its own thread (Django's ThreadSensitiveContext), so persistent
    # connections would pile up, one per request, until PostgreSQL refuses clients: Django's docs say
    # to disable them there, which makes every ASGI request open a connection
    max_age = "0" if worker_class == "uvicorn" else "600"
    server_env = {**limits, **os.environ, "PUBLIC_BASE_URL": base, "CONN_MAX_AGE": max_age, **(env or {})}
    klass, app = WORKER_CLASSES[worker_class]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            app,
            "--chdir",
            str(root or ROOT),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            klass,
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        env=server_env,
    )
    try:
        wait_until_up(f"{base}/t/acme/healthz")
        yield base
    finally:
        stop_process(server)


@contextmanager
def tool_policy_override(schema: str, tool_name: str, **fields: Any) -> Iterator[None]:
    """Set a tool's policy row in ``schema`` for the benchmark and put back exactly what was there
    (the row's previous values, or no row) afterwards, even when the benchmark fails."""
    from django_tenants.utils import schema_context

    from mcp_tools.models import ToolPolicy

    with schema_context(schema):
        previous = ToolPolicy.objects.filter(tool_name=tool_name).first()
        saved = {name: getattr(previous, name) for name in fields} if previous else None
        ToolPolicy.objects.update_or_create(tool_name=tool_name, defaults=fields)
    try:
        yield
    finally:
        with schema_context(schema):
            if saved is None:
                ToolPolicy.objects.filter(tool_name=tool_name).delete()
            else:
                ToolPolicy.objects.filter(tool_name=tool_name).update(**saved)
