"""The MCP request as the layers below the view see it.

The view (``mcp_tools.views``) alone holds the ``HttpRequest``: it runs the transport checks, reads
what the layers below need from the request once, into ``Edge``, and hands that on. The bearer check
(``mcp_tools.auth``), the methods (``mcp_tools.dispatch``) and what they report (``mcp_tools.observe``)
never see the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_tools.protocol import Incoming
from oauth.issuer import resource_metadata_for
from tenants.http import address_of


@dataclass(frozen=True)
class Edge:
    incoming: Incoming  # the JSON-RPC message, parsed and classified (``mcp_tools.protocol.parse``)
    token: str | None  # the bearer token (None: no bearer credentials)
    tenant_slug: str  # the tenant the request was routed to
    resource: str  # this endpoint's RFC 8707 resource, the audience a token must name
    # the TCP peer and X-Forwarded-For as sent: ``source_address`` reads them only for an audit row
    peer: tuple[str, str]
    request_id: str  # one id per request: the principal's, and the audit trail's

    @property
    def source_address(self) -> str:
        """The client's address (``tenants.http.client_address``), for the audit trail."""
        return address_of(*self.peer)

    @property
    def resource_metadata(self) -> str:
        """The resource's metadata document (RFC 9728), which every challenge names."""
        return resource_metadata_for(self.resource)
