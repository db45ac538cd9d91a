"""Cost of changing a provider's grant target (its endpoints or client id) with N connected accounts:
the change's transaction (every credential retired with one ``INSERT ... SELECT``, the accounts marked,
the provider saved), and the revocation of the retired grants at the old endpoints by the sweep
(``connectors.retired.sweep``, one process), against the loopback provider of bench/refresh_jobs.py.

Run: ``.venv/bin/python bench/provider_change.py [--sizes 1000,10000]`` (the embedded PostgreSQL when
``DATABASE_URL`` is unset; creates the tenant ``benchjobs`` and its users once, as refresh_jobs does)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import setup_django  # noqa: E402
from bench.refresh_jobs import SLUG, create_due_accounts, get_json, loopback_provider, prepare  # noqa: E402


def change_once(size: int, provider_url: str, round_no: int) -> dict:
    from django.db import transaction
    from django_tenants.utils import schema_context

    from connectors import retired, services
    from connectors.models import ConnectedAccount, Provider, RetiredGrant

    create_due_accounts(size)
    get_json(f"{provider_url}/reset", "POST")
    with schema_context(SLUG):
        provider = Provider.objects.get(key="loopback")
        fields = {f.name: getattr(provider, f.name) for f in Provider._meta.concrete_fields}
        fields["client_id"] = f"bench-{round_no}"  # a new client id: every grant ends
        started = time.monotonic()
        with transaction.atomic():  # the revocations after the commit are left to the sweep below
            services._write_provider(
                key="loopback", fields=fields, secret_entered=True, actor_user_id=None, request=None, source="cli"
            )
            changed = time.monotonic() - started
        # (the on-commit inline revocations, INLINE_REVOCATIONS of them, ran here)
        after_commit = time.monotonic() - started
        pending = RetiredGrant.objects.count()
        started = time.monotonic()
        counts = retired.sweep()
        swept = time.monotonic() - started
        needs_reauth = ConnectedAccount.objects.filter(status_reason="provider_changed").count()
    stats = get_json(f"{provider_url}/stats")
    return {
        "accounts": size,
        "change_transaction_ms": round(changed * 1000, 1),
        "with_inline_revocations_ms": round(after_commit * 1000, 1),
        "retired_pending_for_sweep": pending,
        "sweep_seconds": round(swept, 2),
        "sweep_grants_per_second": round(counts["retired_revoked"] / swept, 1) if swept else None,
        "needs_reauth": needs_reauth,
        "provider_revocations": stats.get("revocations"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    setup_django()
    with loopback_provider() as url:
        prepare(max(sizes), url)
        for number, size in enumerate(sizes):
            print(json.dumps({**change_once(size, url, number), "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}))


if __name__ == "__main__":
    main()
