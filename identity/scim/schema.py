"""The SCIM documents: a User as this service represents it, and the discovery documents
(RFC 7643 §5-7) describing the subset offered."""

from __future__ import annotations

from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def represent(resource, location: str) -> dict[str, Any]:
    user, row = resource.user, resource.row
    state = resource.state()
    changed = max(row.updated_at, resource.membership.updated_at) if resource.membership else row.updated_at
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": str(row.pk),
        "userName": user.email,
        "name": {"formatted": user.full_name, "givenName": state.given, "familyName": state.family},
        "displayName": user.full_name,
        "emails": [{"value": user.email, "type": "work", "primary": True}],
        "active": resource.active,
        "meta": {
            "resourceType": "User",
            "created": _iso(row.created_at),
            "lastModified": _iso(changed),
            "location": location,
        },
    }
    if row.external_id:
        body["externalId"] = row.external_id
    return body


def service_provider_config(location: str) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 200},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The tenant's SCIM token (manage.py tenant_scim_token <tenant>)",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": location},
    }


def _attribute(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


def user_schema(location: str) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A member of this tenant (its membership of a platform user)",
        "attributes": [
            _attribute("userName", required=True, uniqueness="server", description="the user's email address"),
            _attribute(
                "name",
                "complex",
                subAttributes=[_attribute("formatted"), _attribute("givenName"), _attribute("familyName")],
            ),
            _attribute("displayName"),
            _attribute(
                "emails",
                "complex",
                multiValued=True,
                subAttributes=[_attribute("value"), _attribute("type"), _attribute("primary", "boolean")],
            ),
            _attribute("active", "boolean", description="the membership of this tenant"),
            _attribute("externalId", caseExact=True),
        ],
        "meta": {"resourceType": "Schema", "location": f"{location}/{USER_SCHEMA}"},
    }


def schemas(location: str) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": 1,
        "startIndex": 1,
        "itemsPerPage": 1,
        "Resources": [user_schema(location)],
    }


def resource_types(location: str, schema: str) -> dict[str, Any]:
    user = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "schema": schema,
        "meta": {"resourceType": "ResourceType", "location": f"{location}/User"},
    }
    return {"schemas": [LIST_SCHEMA], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1, "Resources": [user]}
