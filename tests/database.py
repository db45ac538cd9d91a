"""The test database as a libpq URL, for the subprocesses a test starts (gunicorn, Celery, a worker
killed mid-refresh): they must reach the database this process uses, not the machine's default.

Built from ``connection.settings_dict``, whatever it came from: the embedded PostgreSQL listens on a
Unix socket only, and its directory arrives as ``OPTIONS["host"]`` (``?host=`` in ``DATABASE_URL``) or
as a ``HOST`` that is a path; a machine's server as ``HOST``/``PORT`` with an optional password."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.db import connection


def database_url() -> str:
    db = connection.settings_dict
    options = db.get("OPTIONS") or {}
    host = str(db.get("HOST") or options.get("host") or "")
    user = quote(db.get("USER") or "", safe="")
    password = db.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    name = quote(db["NAME"], safe="")
    port = str(db.get("PORT") or options.get("port") or "")
    if host.startswith("/"):  # a socket directory: libpq takes it as the host parameter
        query = {"host": host, **({"port": port} if port else {})}
        return f"postgresql://{credentials}/{name}?{urlencode(query)}"
    return f"postgresql://{credentials}{host}{f':{port}' if port else ''}/{name}"
