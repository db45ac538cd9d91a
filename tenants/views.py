from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from tenants.health import check_broker, check_database


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    tenant = getattr(request, "tenant", None)
    body: dict[str, object] = {"status": "ok" if all(c == "ok" for c in checks.values()) else "error"}
    if tenant is not None:
        body["tenant"] = tenant.slug
        body["schema"] = connection.schema_name
    body["checks"] = checks
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
