"""The SCIM 2.0 endpoints of a tenant (DRF): ``Users`` (+ ``/Users/<id>``), ``ServiceProviderConfig``,
``Schemas``, ``ResourceTypes``. The caller is the tenant's IdP with the tenant's SCIM bearer token
(``tenant_scim_token``); a token of another tenant does not exist in this schema. Every failure is a
SCIM error body (RFC 7644 §3.12) with its status. Thin: each view calls one service."""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from identity.scim import services
from identity.scim.errors import ScimError
from identity.scim.schema import (
    LIST_SCHEMA,
    USER_SCHEMA,
    represent,
    resource_types,
    schemas,
    service_provider_config,
)
from identity.scim.tokens import token_is_valid


class ScimJSONParser(JSONParser):
    media_type = "application/scim+json"


class ScimJSONRenderer(JSONRenderer):
    media_type = "application/scim+json"


class ScimCaller:
    """The tenant's identity provider, authenticated by the SCIM token."""

    is_authenticated = True
    pk = None


class ScimTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request):
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        if not token_is_valid(token.strip()):
            raise exceptions.AuthenticationFailed("the SCIM token is not valid for this tenant")
        return ScimCaller(), None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="scim"'


class ScimCallerOnly(BasePermission):
    def has_permission(self, request: Request, view) -> bool:
        return isinstance(request.user, ScimCaller)


def scim_exception_handler(exc: Exception, context: dict) -> Response:
    headers = {}
    if isinstance(exc, ScimError):
        error = exc
    elif isinstance(exc, Http404):
        error = ScimError(404, "not found")
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        error = ScimError(401, str(exc.detail))
        headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    elif isinstance(exc, exceptions.ParseError):
        error = ScimError(400, "the body is not valid JSON", "invalidSyntax")
    elif isinstance(exc, exceptions.APIException):
        error = ScimError(exc.status_code, str(exc.detail))
    else:
        raise exc
    return Response(error.body(), status=error.status, headers=headers)


class ScimView(APIView):
    authentication_classes = [ScimTokenAuthentication]
    permission_classes = [ScimCallerOnly]
    parser_classes = [ScimJSONParser, JSONParser]
    renderer_classes = [ScimJSONRenderer, JSONRenderer]

    def get_exception_handler(self):
        return scim_exception_handler

    def location(self, scim_id: str = "") -> str:
        path = reverse("identity:scim-user", args=[scim_id]) if scim_id else reverse("identity:scim-users")
        return self.request.build_absolute_uri(path)

    def user(self, resource: services.Resource) -> dict:
        return represent(resource, self.location(str(resource.row.pk)))


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise ScimError(400, "startIndex and count must be integers", "invalidValue") from None


class UsersView(ScimView):
    def get(self, request: Request) -> Response:
        total, start, page = services.list_users(
            tenant=request.tenant,
            expression=request.query_params.get("filter"),
            start_index=_int(request.query_params.get("startIndex"), 1),
            count=_int(request.query_params.get("count"), 100),
        )
        return Response(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": len(page),
                "Resources": [self.user(resource) for resource in page],
            }
        )

    def post(self, request: Request) -> Response:
        resource = services.create_user(tenant=request.tenant, body=request.data)
        body = self.user(resource)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["meta"]["location"]})


class UserView(ScimView):
    def get(self, request: Request, scim_id: str) -> Response:
        return Response(self.user(services.get_user(tenant=request.tenant, scim_id=scim_id)))

    def put(self, request: Request, scim_id: str) -> Response:
        return Response(self.user(services.replace_user(tenant=request.tenant, scim_id=scim_id, body=request.data)))

    def patch(self, request: Request, scim_id: str) -> Response:
        return Response(self.user(services.patch_user(tenant=request.tenant, scim_id=scim_id, body=request.data)))

    def delete(self, request: Request, scim_id: str) -> Response:
        services.delete_user(tenant=request.tenant, scim_id=scim_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceProviderConfigView(ScimView):
    def get(self, request: Request) -> Response:
        return Response(service_provider_config(request.build_absolute_uri(reverse("identity:scim-spc"))))


class SchemasView(ScimView):
    def get(self, request: Request) -> Response:
        return Response(schemas(request.build_absolute_uri(reverse("identity:scim-schemas"))))


class ResourceTypesView(ScimView):
    def get(self, request: Request) -> Response:
        return Response(
            resource_types(request.build_absolute_uri(reverse("identity:scim-resource-types")), USER_SCHEMA)
        )
