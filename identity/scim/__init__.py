"""SCIM 2.0 (RFC 7643/7644), Users only, per tenant at ``H/t/<slug>/scim/v2/``.

The SCIM resource is this tenant's *membership* of a platform-wide user: its ``id`` is issued here
(``ScimUser``, tenant schema) and means nothing in another tenant; ``active`` is the membership;
deactivating or deleting ends it through ``tenants.services.end_membership``, whose receivers revoke
the user's tokens in this tenant at once and queue the connectors' upstream sweep.

Hand-written on DRF rather than ``django-scim2``: that library maps one SCIM resource type onto one
Django model row (the user model), with one service provider per deployment (its settings hold the
``NETLOC`` of every location URL and the authentication schemes) and authentication left to
Django's user middleware. Here a resource is a membership of a shared user, its id and location are
per tenant, writes must go through the tenants services (and refuse to rewrite a user another tenant
shares: ``mutability``), and the caller is the tenant's IdP with a bearer token of that tenant. What
the library would have contributed (the filter grammar and the PATCH path grammar) is small for the
subset offered here: ``eq`` filters on ``userName``, ``externalId``, ``id`` and ``emails.value``, and
the PATCH paths Okta and Entra ID send (``identity.scim.patch``).
"""
