"""A signed-in tenant admin session over real HTTP (httpx against the live server), for admin tests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.oauth_flow import Browser


@dataclass
class AdminSession(Browser):
    """``AdminSession(live.tenant("globex"), "admin@globex.test").login()``; paths are under ``/admin/``."""

    def url(self, path: str = "") -> str:
        return self.tenant.url(f"admin/{path.lstrip('/')}")

    def login(self) -> AdminSession:
        super().login("admin/login/", next=self.url(""))
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
