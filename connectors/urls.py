"""``H/t/<slug>/connections/...`` (the URL contract of the design card)."""

from django.urls import path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.connections, name="list"),
    path("callback/", views.callback, name="callback"),
    path("<slug:key>/connect/", views.connect, name="connect"),
    path("<slug:key>/disconnect/", views.disconnect, name="disconnect"),
]
