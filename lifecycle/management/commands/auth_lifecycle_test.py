"""``manage.py auth_lifecycle_test --base-url URL``: thin; the work is in ``lifecycle.runner``."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from lifecycle.runner import run


class Command(BaseCommand):
    help = (
        "Create throwaway tenants and users, run every auth flow over HTTP against BASE_URL with the "
        "official mcp client, print one line per property and critical_auth_failures=<n>, clean up."
    )

    def add_arguments(self, parser) -> None:
        default = os.environ.get("BASE_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        parser.add_argument("--base-url", default=default, help=f"the deployment to check (default {default})")
        parser.add_argument(
            "--idp-host",
            default=os.environ.get("LIFECYCLE_IDP_HOST", "127.0.0.1"),
            help="the address this command serves its throwaway identity provider on, which the deployment "
            "must reach (default 127.0.0.1; its issuer is plain http: a deployment refusing that skips the check)",
        )

    def handle(self, *args, base_url: str, idp_host: str, **options) -> None:
        failed = run(base_url=base_url.rstrip("/"), idp_host=idp_host, write=lambda line: self.stdout.write(line))
        if failed:
            raise CommandError(f"{failed} lifecycle check(s) failed", returncode=1)
