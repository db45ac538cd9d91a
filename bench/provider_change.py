"""Changing a provider's grant target (its client id) with N connected accounts: the change's
transaction (every credential retired with one ``INSERT ... SELECT``, the accounts marked, the provider
saved), and the revocation of the retired grants at the old endpoints by the sweep
(``connectors.retired.sweep``, one process), against the loopback provider of ``bench refresh-jobs``
(its tenant ``benchjobs`` and users)."""

from __future__ import annotations

import json
import time

from bench.common import bench_parser, get_json, load, loopback_provider, setup_django
from bench.refresh_jobs import SLUG, create_due_accounts, prepare


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
        after_commit = time.monotonic() - started  # the on-commit inline revocations ran here
        pending = RetiredGrant.objects.count()
        started = time.monotonic()
        counts = retired.sweep()
        swept = time.monotonic() - started
        needs_reauth = ConnectedAccount.objects.filter(status_reason="provider_changed").count()
    return {
        "accounts": size,
        "change_transaction_ms": round(changed * 1000, 1),
        "with_inline_revocations_ms": round(after_commit * 1000, 1),
        "retired_pending_for_sweep": pending,
        "sweep_seconds": round(swept, 2),
        "sweep_grants_per_second": round(counts["retired_revoked"] / swept, 1) if swept else None,
        "needs_reauth": needs_reauth,
        "provider_revocations": get_json(f"{provider_url}/stats").get("revocations"),
    }


def main(argv: list[str]) -> None:
    parser = bench_parser(__name__, __doc__)
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    setup_django()
    with loopback_provider() as url:
        prepare(max(sizes), url)
        for number, size in enumerate(sizes):
            print(json.dumps({**change_once(size, url, number), "load": load()}))
