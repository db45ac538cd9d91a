"""A PgBouncer on loopback in front of a PostgreSQL database, for the transaction-pooling tests and
``python -m bench pooler-check``: trust auth, one pooled database, stopped and cleaned up on exit."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from probe.ready import stop_process

EXECUTABLE = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)


def _socket_owner(host: str) -> str | None:
    """The owner of a Unix-socket directory (the embedded PostgreSQL's, mode 0700): pgbouncer runs as it."""
    if not host.startswith("/"):
        return None
    owner = pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return None if owner == "root" else owner


@contextmanager
def pgbouncer(
    *,
    host: str,
    port: int,
    dbname: str,
    user: str,
    alias: str,
    pool_mode: str,
    pool_size: int,
    listen_port: int,
    max_client_conn: int = 100,
) -> Iterator[None]:
    """PgBouncer listening on 127.0.0.1:``listen_port`` with one database ``alias`` -> ``dbname`` on
    ``host`` (a name, an address or a Unix-socket directory) and ``port``."""
    if EXECUTABLE is None:
        raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-", dir="/tmp"))
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{alias} = host={host} port={port} dbname={dbname} pool_mode={pool_mode} pool_size={pool_size}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen_port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
        f"logfile = {directory / 'pgbouncer.log'}\nmax_client_conn = {max_client_conn}\n"
    )
    command = [EXECUTABLE, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        run_as = _socket_owner(host) or "postgres"
        for path in (directory, *directory.iterdir()):
            shutil.chown(path, run_as)
        command[1:1] = ["-u", run_as]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 (fixed argv)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", listen_port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"pgbouncer did not listen on {listen_port}")
        yield
    finally:
        stop_process(process, timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
