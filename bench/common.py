"""Shared set-up for the benchmark scripts: environment, database, a gunicorn on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def gunicorn(port: int, workers: int = 2) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PUBLIC_BASE_URL": base, "CONN_MAX_AGE": "600"}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{base}/t/acme/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
