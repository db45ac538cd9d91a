"""The base of the tenants' REST APIs (DRF views protected by this platform's own OAuth tokens,
``resource_api.views.TenantAPIView``), below the apps that serve an API (crm, connectors) and the
authorization server that lists its scopes (oauth)."""
