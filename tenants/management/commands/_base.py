from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.errors import TenantServiceError
from tenants.services import Outcome


class ProvisioningCommand(BaseCommand):
    """Runs one service call; a refused request becomes a CommandError with its stable code."""

    def run_service(self, call: Callable[[], tuple[Any, Outcome]]) -> Any:
        try:
            obj, outcome = call()
        except TenantServiceError as exc:
            raise CommandError(f"{exc} [{exc.code}]") from exc
        self.stdout.write(self.style.SUCCESS(outcome.detail) if outcome.changed else outcome.detail)
        return obj
