"""The platform-wide part of the authorization server: tables in the public schema (a SHARED app).

``oauth`` itself is a tenant app (DOT's tables live in each tenant's schema); policy that the
platform operator sets once for every tenant, such as the challenge-channel rules, lives here. It is
a sub-package of ``oauth`` so the authorization server keeps one home and one layer: it imports
``oauth.models`` for the channel choices and nothing above the ``oauth`` layer.
"""
