"""``make run-affine [GROUPS=2]``: the platform as ``make run`` starts it, but with the web tier as
HAProxy on ``PORT`` (default 8000) in front of ``GROUPS`` gunicorn groups on loopback ports
``PORT+1`` ... ``PORT+GROUPS``, each tenant's requests hashed to one group (``config/haproxy.py``,
``config/haproxy.cfg.template``). One Celery worker and beat, as with ``make run``. HAProxy's stats
page: ``http://127.0.0.1:${HAPROXY_STATS_PORT:-8404}/``. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.dev_secrets import VAR_DIR  # noqa: E402
from config.haproxy import ensure_haproxy, group_name, render  # noqa: E402
from tools.run_platform import gunicorn_command, main  # noqa: E402


def affine_web(groups: int, stats_port: int):
    def start(host: str, port: int) -> list[subprocess.Popen]:
        ports = [port + 1 + i for i in range(groups)]
        public = urlsplit(os.environ.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}"))
        config = render(
            f"{host}:{port}", ports, health_host=public.hostname or "127.0.0.1", stats_bind=f"127.0.0.1:{stats_port}"
        )
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path = VAR_DIR / "haproxy.cfg"
        path.write_text(config)
        binary = ensure_haproxy()
        subprocess.run([binary, "-c", "-q", "-f", str(path)], check=True)
        # HAProxy is the one trusted proxy (client address from X-Forwarded-For for the limits and lockout)
        env = {**os.environ, "BEHIND_PROXY": os.environ.get("BEHIND_PROXY", "1")}
        processes = [subprocess.Popen(gunicorn_command("127.0.0.1", p), env=env) for p in ports]
        processes.append(subprocess.Popen([binary, "-db", "-f", str(path)]))
        names = ", ".join(f"{group_name(i)} 127.0.0.1:{p}" for i, p in enumerate(ports))
        print(f"HAProxy on {host}:{port} ({path}), groups: {names}; stats http://127.0.0.1:{stats_port}/", flush=True)
        return processes

    return start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=int(os.environ.get("GROUPS", "2")))
    args = parser.parse_args()
    if args.groups < 1:
        parser.error("--groups must be at least 1")
    sys.exit(main(web=affine_web(args.groups, int(os.environ.get("HAPROXY_STATS_PORT", "8404")))))
