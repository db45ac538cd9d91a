"""Tenant-affine routing on one machine: HAProxy (Debian's package) in front of gunicorn groups.

``render`` fills ``haproxy.cfg.template`` (beside this file) with the groups' ports;
``ensure_haproxy`` installs Debian's haproxy when it is missing and this runs as root; ``haproxy``
runs it in the foreground for as long as the context lasts; ``server_states`` reads its stats page
(which group is up). Imports nothing of the project. Used by ``make run-affine``
(``tools/run_affine.py``), the tests and ``bench/affine_spread.py``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg.template"
HAPROXY = "/usr/sbin/haproxy"
BACKEND = "groups"


def group_name(index: int) -> str:
    """The HAProxy server name of group ``index`` (0-based): ``group1``, ``group2``, ... (the value of
    the ``X-Served-By`` response header)."""
    return f"group{index + 1}"


def render(
    bind: str,
    group_ports: list[int],
    *,
    group_host: str = "127.0.0.1",
    health_host: str = "127.0.0.1",
    stats_bind: str | None = None,
    check_interval: str = "1s",
    maxconn: int = 2000,
) -> str:
    servers = [f"    server {group_name(i)} {group_host}:{port}" for i, port in enumerate(group_ports)]
    # the same groups unchecked, used only when every group fails its health check: /healthz also
    # checks the database and the broker, which every group shares, and a broker outage must not
    # turn into "no server available" for every call (a dead group is still skipped by redispatch)
    servers += [
        f"    server {group_name(i)}-unchecked {group_host}:{port} backup no-check"
        for i, port in enumerate(group_ports)
    ]
    servers = "\n".join(servers)
    stats = ""
    if stats_bind:  # the stats page, for the tests and operators (`;csv` for machines); loopback only
        stats = f"\nlisten stats\n    bind {stats_bind}\n    stats enable\n    stats uri /\n    stats refresh 5s\n"
    return Template(TEMPLATE.read_text()).substitute(
        bind=bind,
        servers=servers,
        stats=stats,
        health_host=health_host,
        check_interval=check_interval,
        maxconn=maxconn,
    )


def ensure_haproxy() -> str:
    """The haproxy binary, Debian's package installed first when missing (as root, like the test
    command's chromium and pgbouncer)."""
    found = shutil.which("haproxy") or (HAPROXY if Path(HAPROXY).exists() else None)
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy"], check=True, env=env)
        return HAPROXY
    raise SystemExit("haproxy is missing: install Debian's package (apt-get install haproxy)")


@contextmanager
def haproxy(config: str, wait_for: str | None = None) -> Iterator[subprocess.Popen]:
    """HAProxy with ``config`` in the foreground (``-db``) until the context ends; the configuration is
    checked first (``-c``). ``wait_for``: a URL that must answer (any status) before this yields."""
    binary = ensure_haproxy()
    with tempfile.TemporaryDirectory(prefix="haproxy-") as directory:
        path = Path(directory) / "haproxy.cfg"
        path.write_text(config)
        subprocess.run([binary, "-c", "-q", "-f", str(path)], check=True)
        process = subprocess.Popen([binary, "-db", "-f", str(path)])
        try:
            if wait_for:
                _wait_listening(wait_for, process)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(url: str, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"haproxy exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (loopback)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"haproxy did not answer at {url}")


def server_states(stats_url: str) -> dict[str, str]:
    """Each group's state on the stats page (``UP``, ``DOWN``, ``UP 1/2``, ...), by server name (the
    unchecked backups left out)."""
    with urllib.request.urlopen(f"{stats_url.rstrip('/')}/;csv", timeout=5) as response:  # noqa: S310
        text = response.read().decode().lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {
        row["svname"]: row["status"]
        for row in rows
        if row["pxname"] == BACKEND and row["svname"] not in {"FRONTEND", "BACKEND"} and row["bck"] != "1"
    }


def wait_for_states(stats_url: str, expected: dict[str, str], timeout: float = 30) -> dict[str, str]:
    """Poll the stats page until every named group has its expected state (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    states = server_states(stats_url)
    while time.monotonic() < deadline:
        states = server_states(stats_url)
        if all(states.get(name) == state for name, state in expected.items()):
            break
        time.sleep(0.2)
    return states
