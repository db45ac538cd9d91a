"""The scope matrix's rows follow the code: after every ``migrate`` of a tenant schema (so also when
a tenant is created, and when a deploy adds a tool) the tools without a row get one with their
declared defaults. The admin only reads them."""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import get_public_schema_name

from mcp_tools.services import ensure_policies


def ensure_policies_after_migrate(sender, **kwargs) -> None:
    if connection.schema_name != get_public_schema_name():  # the matrix lives in tenant schemas only
        ensure_policies()
