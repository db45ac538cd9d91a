"""The consent page: DOT's AuthorizationView, limited to tenant members, RFC 8707-strict, and
remembering what each user already approved for each client."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.oauth2_backends import _add_iss_to_redirect as add_iss_to_redirect
from oauth2_provider.oauth2_validators import Application
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from declarations.scopes import admin_only_scopes, get_scope
from oauth.issuer import issuer, mcp_resource
from oauth.services import prior_consent, record_consent
from tenants.selectors import active_membership


class TenantAuthorizationView(AuthorizationView):
    template_name = "oauth2_provider/authorize.html"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        self.membership = active_membership(user.pk, request.tenant.pk) if user.is_authenticated else None
        if user.is_authenticated and self.membership is None:
            return render(request, "oauth/not_a_member.html", status=403)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        resources = request.GET.getlist("resource")
        canonical = mcp_resource(request)
        if not resources:
            query = request.GET.copy()
            query.setlist("resource", [canonical])
            request.GET = query
        elif any(r != canonical for r in resources):
            return self._refuse(request, "invalid_target", "resource must be this tenant's MCP endpoint")
        admin_only = admin_only_scopes() & set(request.GET.get("scope", "").split())
        if admin_only and request.user.is_authenticated and not self.membership.is_admin:
            return self._refuse(
                request, "access_denied", f"only tenant administrators may grant {', '.join(sorted(admin_only))}"
            )
        return super().get(request, *args, **kwargs)

    def _refuse(self, request: HttpRequest, error: str, description: str) -> HttpResponse:
        try:
            _, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        error = OAuthToolkitError(
            error=CustomOAuth2Error(error=error, description=description, state=credentials.get("state")),
            redirect_uri=credentials["redirect_uri"],
        )
        return self.error_response(error, Application.objects.get(client_id=credentials["client_id"]))

    def render_to_response(self, context: dict, **response_kwargs) -> HttpResponse:
        """Called with the consent page's context once DOT has validated the request. Skip the page
        when this user already approved every requested scope for this client (unless the client
        asked for ``prompt=consent``); otherwise show it, marking the scopes that are new."""
        if "application" not in context:  # DOT's error page for an invalid client or redirect URI
            return super().render_to_response(context, **response_kwargs)
        application = context["application"]
        requested = list(context["scopes"])
        granted = prior_consent(self.request.user, application)
        prompt = set(self.request.GET.get("prompt", "").split())
        if granted and set(requested) <= granted and "consent" not in prompt:
            form = AllowForm(data={**self.get_initial(), "allow": True})
            if form.is_valid():
                return self.form_valid(form)
        context["scope_items"] = [
            {"name": n, "description": get_scope(n).description, "new": bool(granted) and n not in granted}
            for n in requested
        ]
        context["step_up"] = bool(granted) and not set(requested) <= granted
        context["redirect_host"] = urlsplit(context["redirect_uri"]).netloc
        context["client_name"] = application.name or "An unnamed client"
        return super().render_to_response(context, **response_kwargs)

    def redirect(self, redirect_to: str, application: Application | None) -> HttpResponse:
        # RFC 9207: the tenant's issuer on every authorization response, errors included (DOT adds
        # it to successful ones only); the helper replaces any iss already present.
        redirect_to = add_iss_to_redirect(redirect_to, issuer(self.request))
        return super().redirect(redirect_to, application)

    def form_valid(self, form: AllowForm) -> HttpResponse:
        response = super().form_valid(form)
        if form.cleaned_data.get("allow") and response.status_code in (301, 302):
            location = response.get("Location", "")
            if "code=" in location:
                application = Application.objects.get(client_id=form.cleaned_data["client_id"])
                record_consent(self.request.user, application, form.cleaned_data.get("scope", "").split())
        return response
