"""Names of the grant beyond django-oauth-toolkit's that the platform offers: enterprise-managed
authorization (an ID-JAG presented with the RFC 7523 JWT bearer grant, ``oauth.id_jag``). Kept apart so
the client policy (no database) and the metadata view can name them without importing the grant."""

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"  # authorization_grant_profiles_supported
ID_JAG_TYP = "oauth-id-jag+jwt"  # the JOSE header typ of an ID-JAG
