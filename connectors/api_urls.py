"""``H/t/<slug>/api/connections/`` (the connections REST API)."""

from django.urls import path

from connectors import api

urlpatterns = [
    path("", api.ConnectionList.as_view(), name="connections-api"),
    path("<slug:key>/", api.ConnectionDetail.as_view(), name="connections-api-detail"),
    path("<slug:key>/refresh/", api.ConnectionRefresh.as_view(), name="connections-api-refresh"),
]
