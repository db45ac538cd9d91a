"""``H/t/<slug>/api/crm/`` (the CRM's read API)."""

from django.urls import path

from crm import api

urlpatterns = [
    path("contacts", api.ContactList.as_view(), name="crm-api-contacts"),
]
