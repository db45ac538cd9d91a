"""The idempotency-key convention of this platform's MCP endpoint (exactly-once writes), low enough that both the
endpoint (``mcp_tools.idempotency``) and connector tools that call another MCP server can name it.

MCP (2026-07-28) defines no idempotency key (SEP-3182 proposed an ``idempotencyKey`` field and was
closed unmerged), and ``_meta`` keys under ``io.modelcontextprotocol/`` are reserved for the spec, so
the key travels in the request's ``_meta`` under a project prefix."""

from __future__ import annotations

import re

IDEMPOTENCY_META_KEY = "tenant-oauth-mcp/idempotency-key"
# in tools/list, on each tool that honours the key: {"metaKey": IDEMPOTENCY_META_KEY, "retentionSeconds": N}
IDEMPOTENCY_TOOL_META = "tenant-oauth-mcp/idempotency"
# on a result served from the stored record instead of running the tool
IDEMPOTENT_REPLAY_META = "tenant-oauth-mcp/idempotent-replay"
# 1-255 visible ASCII characters (a UUID is the expected shape)
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
