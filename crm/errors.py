class NotFound(Exception):
    """The object does not exist in the caller's tenant (another tenant's ids are simply not found)."""
