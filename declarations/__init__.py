"""What domain apps declare, low in the layers so any app can use it: scopes (``scopes.py``) and
tools (``tools.py``, with the principal a handler receives). It imports nothing from the project.

Each app declares its own in modules of the same names (``crm/scopes.py``, ``crm/tools.py``); the MCP
endpoint and the authorization server find them by autodiscovery (``mcp_tools.apps``, ``oauth.apps``).
"""
