"""A signed-in admin session over real HTTP (httpx against the live server), for admin tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from tests.conftest import PASSWORD
from tests.oauth_flow import hidden_inputs


@dataclass
class AdminSession:
    """``base`` is the admin root, e.g. ``http://127.0.0.1:PORT/t/globex/admin``."""

    base: str
    email: str
    password: str = PASSWORD
    http: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False, timeout=20))

    def url(self, path: str = "") -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def login(self) -> AdminSession:
        login = self.url("login/")
        page = self.http.get(login)
        response = self.http.post(
            login,
            data={
                "csrfmiddlewaretoken": hidden_inputs(page.text)["csrfmiddlewaretoken"],
                "username": self.email,
                "password": self.password,
                "next": self.url(""),
            },
            headers={"Referer": login},
        )
        assert response.status_code == 302, response.text[:500]
        return self

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(self.url(path), params=params)

    def post(self, path: str, data: dict[str, object]) -> httpx.Response:
        """POST with the CSRF token of the session (the cookie's value is accepted as the form token);
        a list value sends the field several times."""
        token = self.http.cookies["csrftoken"]
        return self.http.post(
            self.url(path), data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": self.url(path)}
        )
