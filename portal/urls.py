"""``H/t/<slug>/account/...``: the signed-in member's account page (URL name ``account``,
where a sign-in through the tenant's IdP lands when it has no ``next``)."""

from django.urls import path

from portal import views

urlpatterns = [
    path("", views.account, name="account"),
    path("clients/<int:application_id>/revoke/", views.revoke_client, name="account-revoke-client"),
    path("sessions/<int:session_id>/end/", views.end_session, name="account-end-session"),
]
