"""Enterprise identity inside a tenant (namespace ``identity``): SSO sign-in and back-channel logout
under ``sso/``, SCIM 2.0 under ``scim/v2/``."""

from django.urls import path

from identity import views

app_name = "identity"

urlpatterns = [
    path("sso/<slug:key>/start/", views.start, name="start"),
    path("sso/callback/", views.callback, name="callback"),  # the one redirect URI of the tenant
    path("sso/backchannel-logout/", views.backchannel, name="backchannel_logout"),
]
