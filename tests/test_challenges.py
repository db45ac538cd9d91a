"""Unit tests for the pure challenge taxonomy (on top of the HTTP tests)."""

from mcp_tools.challenges import AuthClass, AuthFailure


def test_every_class_is_distinct_and_fixed():
    names = [member.name for member in AuthClass]
    assert len(names) == len(set(names)) == 5
    assert not [n for n in names if n.startswith("CONNECTOR_")]  # connector failures are tool results, never 401/403
    assert AuthClass.INVALID_TOKEN is not AuthClass.AUTH_REQUIRED
    assert (AuthClass.INSUFFICIENT_SCOPE.status, AuthClass.INSUFFICIENT_SCOPE.retryable) == (403, True)
    assert AuthClass.TENANT_MISMATCH.retryable is False


def test_challenge_strings():
    failure = AuthFailure(AuthClass.INSUFFICIENT_SCOPE, 'needs "crm.write"', ("crm.read", "crm.write"))
    assert failure.challenge("https://h/.well-known/x", with_error=True) == (
        'Bearer resource_metadata="https://h/.well-known/x", error="insufficient_scope", '
        'error_description="needs \\"crm.write\\"", scope="crm.read crm.write"'
    )
    missing = AuthFailure(AuthClass.AUTH_REQUIRED, "Authorization is required", ("crm.read",))
    assert missing.http_challenge("m") == 'Bearer resource_metadata="m", scope="crm.read"'
    assert 'error="invalid_token"' in missing.challenge("m", with_error=True)
    assert missing.structured() == {
        "class": "AUTH_REQUIRED",
        "retryable": True,
        "description": "Authorization is required",
    }
