from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class LoginRetryAfterMiddleware:
    """A login refused before the password was checked (``tenants.login_limits``: a throttled account)
    is answered by the login page itself, with its one generic error; this adds the ``Retry-After``
    the refusal set on the request. (A lockout's 429 sets its own, ``accounts.lockout``.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        retry_after = getattr(request, "login_retry_after", None)
        if retry_after and not response.has_header("Retry-After"):
            response["Retry-After"] = str(retry_after)
        return response
