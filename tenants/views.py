from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tenants.health import check_broker, check_database
from tenants.selectors import active_membership


def members_only(view: Any) -> Any:
    """A page for this tenant's members: others sign in first, or are told they are not a member."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if active_membership(request.user.pk, request.tenant.pk) is None:
            return render(request, "oauth/not_a_member.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    tenant = getattr(request, "tenant", None)
    body: dict[str, object] = {"status": "ok" if all(c == "ok" for c in checks.values()) else "error"}
    if tenant is not None:
        body["tenant"] = tenant.slug
        body["schema"] = connection.schema_name
    body["checks"] = checks
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
