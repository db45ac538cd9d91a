"""The benchmark's baseline: the same one-row read as ``crm_get_contact``, as a plain DRF view behind
django-oauth-toolkit's ``OAuth2Authentication`` + ``TokenHasScope``. Mounted only when BENCH_VIEWS=1."""

from __future__ import annotations

from django.urls import path
from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Contact


class ContactView(APIView):
    authentication_classes = [OAuth2Authentication]
    permission_classes = [TokenHasScope]
    required_scopes = ["crm.read"]

    def get(self, request, contact_id: int):
        contact = Contact.objects.filter(pk=contact_id).first()
        if contact is None:
            return Response({"detail": "not found"}, status=404)
        # the same two reads as the crm_get_contact tool: the contact and its latest notes
        notes = [{"id": n.pk, "body": n.body, "created_at": n.created_at.isoformat()} for n in contact.notes.all()[:20]]
        return Response(
            {
                "id": contact.pk,
                "name": contact.name,
                "email": contact.email,
                "company": contact.company,
                "phone": contact.phone,
                "notes": notes,
            }
        )


class ContactViewNoAuth(ContactView):
    authentication_classes: list = []
    permission_classes: list = []


urlpatterns = [
    path("api/bench/contacts/<int:contact_id>", ContactView.as_view()),
    path("api/bench/contacts-noauth/<int:contact_id>", ContactViewNoAuth.as_view()),
]
