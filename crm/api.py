"""The CRM's read API (DRF), ``H/t/<slug>/api/crm/contacts?query=&limit=``: the same search as the
``crm_search_contacts`` tool, for REST callers. Protected by this tenant's own authorization server:
a platform token for this tenant's API (audience ``H/t/<slug>/api``) with ``crm.read``, or a signed-in
member's session (``resource_api.views.TenantAPIView``). Other tenants' connectors call it through an account
their user connected here (``connectors.tools.connector_crm_contacts``)."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from crm import selectors
from crm.tools import contact_data
from resource_api.views import TenantAPIView


@dataclass(frozen=True)
class APICaller:
    """What the selectors' tenant guard needs (``tenants.guard.HasTenant``)."""

    user_id: int
    tenant_id: int
    tenant_slug: str


class SearchParams(serializers.Serializer):
    query = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)


class ContactList(TenantAPIView):
    required_scopes = ("crm.read",)

    def get(self, request: Request) -> Response:
        params = SearchParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        caller = APICaller(request.user.pk, request.tenant.pk, request.tenant.slug)
        found = selectors.search_contacts(caller, **params.validated_data)
        return Response({"contacts": [contact_data(c) for c in found]})
