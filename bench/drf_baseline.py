"""The benchmark's baseline: the same read as the ``crm_get_contact`` tool (the same selector
and serializer), as a plain DRF view behind django-oauth-toolkit's ``OAuth2Authentication`` +
``TokenHasScope``, and once without auth. Mounted only when BENCH_VIEWS=1."""

from __future__ import annotations

from types import SimpleNamespace

from django.urls import path
from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.errors import NotFound
from crm.selectors import get_contact
from crm.tools import contact_with_notes_data


class ContactView(APIView):
    authentication_classes = [OAuth2Authentication]
    permission_classes = [TokenHasScope]
    required_scopes = ["crm.read"]

    def get(self, request, contact_id: int):
        tenant = request.tenant
        principal = SimpleNamespace(
            user_id=getattr(request.user, "pk", None), tenant_id=tenant.pk, tenant_slug=tenant.slug
        )
        try:
            return Response(contact_with_notes_data(*get_contact(principal, contact_id=contact_id)))
        except NotFound:
            return Response({"detail": "not found"}, status=404)


class ContactViewNoAuth(ContactView):
    authentication_classes: list = []
    permission_classes: list = []


urlpatterns = [
    path("api/bench/contacts/<int:contact_id>", ContactView.as_view()),
    path("api/bench/contacts-noauth/<int:contact_id>", ContactViewNoAuth.as_view()),
]
