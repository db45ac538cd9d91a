"""The PostgreSQL side of schema-per-tenant: new schemas as copies of a migrated template (or a spare
copy made ahead of time), the migration executor that keeps the template current, per-schema
prepared statements, connection recycling by schemas served, and the transaction-pooling backend.
It knows schemas by name, never the ``Tenant`` model: ``tenants`` stands on it, not the other way."""
