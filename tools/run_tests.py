"""The test command (``make test``): chromium, pgbouncer and haproxy from Debian, the npm harnesses of the
real Node clients (``npm ci`` where a ``tests/node*/**/package-lock.json`` is newer than its
``node_modules``), database, then pytest.

``DATABASE_URL`` when set (pytest-django creates ``test_<name>`` beside it), the embedded PostgreSQL
otherwise. Redis is used for the Celery tests when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from config.dev_secrets import ensure_dev_env  # noqa: E402
from config.embedded_db import PGDATA, embedded_database_url, stop_embedded_database  # noqa: E402

PACKAGES = {"chromium": "/usr/bin/chromium", "pgbouncer": "/usr/sbin/pgbouncer", "haproxy": "/usr/sbin/haproxy"}


def ensure_debian_packages() -> None:
    """Debian's chromium (consent-page and admin browser tests), pgbouncer (the transaction-pooling
    backend is tested through a real one) and haproxy (tenant-affine routing, tests/test_affine_routing.py),
    installed when missing and this runs as root."""
    missing = [package for package, binary in PACKAGES.items() if not Path(binary).exists()]
    if not missing or os.environ.get("SKIP_BROWSER_INSTALL"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        print(f"installing Debian's {', '.join(missing)} for the tests", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    else:
        print(f"{', '.join(missing)} missing and cannot be installed here; their tests will fail or skip", flush=True)


def ensure_node_harnesses() -> None:
    """``npm ci`` in every Node test harness whose ``node_modules`` is missing or older than its lockfile."""
    npm = shutil.which("npm")
    for lockfile in sorted(ROOT.glob("tests/node*/**/package-lock.json")):
        if "node_modules" in lockfile.relative_to(ROOT).parts:
            continue
        installed = lockfile.parent / "node_modules"
        if installed.is_dir() and installed.stat().st_mtime >= lockfile.stat().st_mtime:
            continue
        if npm is None:
            print(f"npm is missing: {lockfile.parent} is not installed; its tests will fail", flush=True)
            continue
        print(f"npm ci in {lockfile.parent.relative_to(ROOT)}", flush=True)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=lockfile.parent, check=True)


def main() -> int:
    ensure_debian_packages()
    ensure_node_harnesses()
    for key, value in ensure_dev_env().items():
        os.environ.setdefault(key, value)
    started_here = False
    if not os.environ.get("DATABASE_URL"):
        started_here = not (PGDATA / "postmaster.pid").exists()
        os.environ["DATABASE_URL"] = embedded_database_url()
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]])
    finally:
        if started_here:  # leave a server someone else started (make run) alone
            stop_embedded_database()


if __name__ == "__main__":
    sys.exit(main())
