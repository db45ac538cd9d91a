"""``manage.py auth_lifecycle_test`` (``make lifecycle``): the whole auth lifecycle, for real, against a
running deployment. The top layer: it provisions throwaway tenants with the services below and
drives the deployment over HTTP like an outside client (``probe``)."""
