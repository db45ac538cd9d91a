"""The member's own pages in a tenant: ``account/`` ("AI clients with access", sessions). It reads and
revokes through the apps that own the data (``oauth.user_grants``, ``connectors.selectors``,
``identity.selectors``/``services``) and holds no rows of its own."""
