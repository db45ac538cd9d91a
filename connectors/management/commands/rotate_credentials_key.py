from django.core.management.base import BaseCommand
from django_tenants.utils import get_tenant_model, schema_context

from connectors.crypto import RotationReport, reencrypt_current_schema


class Command(BaseCommand):
    help = (
        "Re-encrypt every tenant's connector secrets under the newest key in FERNET_KEYS. Resumable: "
        "values the newest key already opens are skipped. Remove an old key only after a clean run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size, **options):
        total = RotationReport()
        for tenant in get_tenant_model().objects.exclude(schema_name="public").order_by("schema_name"):
            with schema_context(tenant.schema_name):
                report = reencrypt_current_schema(batch_size=batch_size)
            self.stdout.write(
                f"{tenant.schema_name}: {report.rotated} re-encrypted, {report.already_current} already current"
                + (f", {report.changed_meanwhile} changed meanwhile (rerun)" if report.changed_meanwhile else "")
            )
            for name in ("examined", "rotated", "already_current", "changed_meanwhile"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
        summary = f"total: {total.rotated} re-encrypted, {total.already_current} already current"
        self.stdout.write(self.style.SUCCESS(summary))
