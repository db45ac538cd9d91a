"""Lifecycle events other apps hang work on (token revocation, credential cleanup)."""

from django.dispatch import Signal

# sent with tenant=, user=, membership= after a membership is ended
membership_ended = Signal()
# sent with tenant= after a tenant is deactivated
tenant_deactivated = Signal()
