"""Enterprise identity inside a tenant (namespace ``identity``): SSO sign-in and back-channel logout
under ``sso/``, SCIM 2.0 under ``scim/v2/``."""

from django.urls import path

from identity import views
from identity.scim import views as scim

app_name = "identity"

urlpatterns = [
    path("sso/<slug:key>/start/", views.start, name="start"),
    path("sso/callback/", views.callback, name="callback"),  # the one redirect URI of the tenant
    path("sso/backchannel-logout/", views.backchannel, name="backchannel_logout"),
    # SCIM base URL H/t/<slug>/scim/v2 (IdPs append the resource paths, without a trailing slash)
    path("scim/v2/Users", scim.UsersView.as_view(), name="scim-users"),
    path("scim/v2/Users/<str:scim_id>", scim.UserView.as_view(), name="scim-user"),
    path("scim/v2/ServiceProviderConfig", scim.ServiceProviderConfigView.as_view(), name="scim-spc"),
    path("scim/v2/Schemas", scim.SchemasView.as_view(), name="scim-schemas"),
    path("scim/v2/ResourceTypes", scim.ResourceTypesView.as_view(), name="scim-resource-types"),
]
