"""Events other apps hang work on: lifecycle (token revocation, credential cleanup) and the edge's
limits (metrics, audit trail), which apps above this one record."""

from django.dispatch import Signal

# sent with tenant=, user=, membership= after a membership is ended
membership_ended = Signal()
# sent with tenant= after a tenant is deactivated
tenant_deactivated = Signal()
# sent with tenant= (schema name) and limit= (the bucket's kind) when a rate-limit counter could not be
# reached and the request was let through (tenants.ratelimit fails open)
rate_limit_unavailable = Signal()
# sent with request=, kind= ("address" or "account") and username= when a login limit is reached
# (tenants.login_limits): an address locked, or an account's logins throttled
login_limit_reached = Signal()
