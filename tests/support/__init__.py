"""Helpers shared by the test modules (no test module imports another): free ports, waiting for a
condition, tokens and MCP results, the admin's browser page, CIMD signers, tenant schema signatures,
connector set-ups, and the fuzzer's settings. Fixtures stay in the ``conftest.py`` files."""
