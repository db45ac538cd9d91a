from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from tenants.errors import TenantServiceError
from tenants.selectors import get_tenant
from tenants.services import Outcome


class ProvisioningCommand(BaseCommand):
    """Runs one service call; a refused request becomes a CommandError with its stable code."""

    def run_service(
        self,
        call: Callable[[], tuple[Any, Outcome]],
        *,
        tenant: str | None = None,
        refusals: tuple[type[Exception], ...] = (),
    ) -> Any:
        """``tenant``: the call runs in that tenant's schema (an unknown tenant is refused);
        ``refusals``: the app's own errors with a ``code``, reported as the tenants' are."""
        try:
            if tenant is None:
                obj, outcome = call()
            else:
                get_tenant(tenant)
                with schema_context(tenant):
                    obj, outcome = call()
        except (TenantServiceError, *refusals) as exc:
            raise CommandError(f"{exc} [{exc.code}]") from exc
        self.stdout.write(self.style.SUCCESS(outcome.detail) if outcome.changed else outcome.detail)
        return obj
