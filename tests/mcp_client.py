"""The official ``mcp`` client glue lives in ``probe.mcp_client`` (the lifecycle command uses it too)."""

from probe.mcp_client import HeadlessConsent, MemoryStorage, connect, provider  # noqa: F401  (re-exported)
