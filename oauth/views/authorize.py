"""The consent page: DOT's AuthorizationView, limited to tenant members, RFC 8707-strict, and
remembering what each user already approved for each client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.oauth2_backends import _add_iss_to_redirect as add_iss_to_redirect
from oauth2_provider.oauth2_validators import Application
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error, InvalidRequestFatalError

from declarations.scopes import admin_only_scopes, get_scope
from oauth.issuer import allowed_resources, issuer
from oauth.selectors import prior_consent
from oauth.services import record_consent
from tenants.models import Membership
from tenants.selectors import active_membership

# RFC 7636 §4.2: an S256 challenge is 43 characters and a verifier at most 128; the grant's column is
# varchar(128). DOT stores whatever arrives, so longer values are refused here first.
CODE_CHALLENGE_MIN = 43
CODE_CHALLENGE_MAX = 128
NONCE_MAX = 255  # the grant's nonce column
# state is echoed in the redirect; a longer one is refused with an error page (echoing it would make a
# redirect URL that clients and browsers cannot follow). Real clients send 16-64 characters.
STATE_MAX = 2048


def _parameter_problem(params: Mapping[str, Any]) -> str | None:
    if len(params.get("code_challenge") or "") > CODE_CHALLENGE_MAX:
        return f"code_challenge is longer than {CODE_CHALLENGE_MAX} characters"
    # RFC 7636 §4.2: 43 to 128 characters; oauthlib only checks that the parameter is present, so an
    # empty one would get a code that no verifier can ever redeem
    if "code_challenge" in params and len(params.get("code_challenge") or "") < CODE_CHALLENGE_MIN:
        return f"code_challenge is shorter than {CODE_CHALLENGE_MIN} characters (RFC 7636)"
    if len(params.get("nonce") or "") > NONCE_MAX:
        return f"nonce is longer than {NONCE_MAX} characters"
    return None


def _admin_only_problem(scope: str, membership: Membership | None) -> str | None:
    admin_only = admin_only_scopes() & set(scope.split())
    if admin_only and (membership is None or not membership.is_admin):
        return f"only tenant administrators may grant {', '.join(sorted(admin_only))}"
    return None


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
        allowed = allowed_resources(request)
        if not resources:
            query = request.GET.copy()
            query.setlist("resource", [allowed[0]])  # the MCP endpoint
            request.GET = query
        elif len(resources) != 1 or resources[0] not in allowed:
            return self._refuse(request, "invalid_target", "resource must be this tenant's MCP endpoint or its API")
        if "approval_prompt" in request.GET:
            # DOT's approval_prompt=auto would skip the page on any live token; the platform's consent
            # memory (render_to_response) decides instead, so a client cannot choose to skip it
            query = request.GET.copy()
            query.pop("approval_prompt")
            request.GET = query
        if len(request.GET.get("state") or "") > STATE_MAX:
            return self._fatal(f"state is longer than {STATE_MAX} characters")
        if problem := _parameter_problem(request.GET):
            return self._refuse(request, "invalid_request", problem)
        if problem := _admin_only_problem(request.GET.get("scope", ""), self.membership):
            return self._refuse(request, "access_denied", problem)
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

    def _fatal(self, description: str) -> HttpResponse:
        """An error page (400), never a redirect: the redirect URI itself is not trustworthy."""
        return self.error_response(FatalClientError(error=InvalidRequestFatalError(description)), None)

    def form_valid(self, form: AllowForm) -> HttpResponse:
        """The consent POST (and the remembered-consent shortcut). DOT trusts the posted form: it looks
        the client up unguarded, redirects a Deny to whatever ``redirect_uri`` was posted and takes the
        scope from the form. Each is checked again here."""
        data = form.cleaned_data
        if len(data.get("state") or "") > STATE_MAX:
            return self._fatal(f"state is longer than {STATE_MAX} characters")
        application = Application.objects.filter(client_id=data["client_id"]).first()
        if application is None:
            return self._fatal("unknown client_id")
        try:
            registered = application.redirect_uri_allowed(data["redirect_uri"])
        except ValueError:  # unparsable (e.g. a broken IPv6 literal)
            registered = False
        if not registered:
            return self._fatal("redirect_uri is not registered for this client")
        refusal = None
        if problem := _parameter_problem(data):
            refusal = ("invalid_request", problem)
        elif problem := _admin_only_problem(data.get("scope") or "", self.membership):
            refusal = ("access_denied", problem)
        if refusal is not None:
            error = CustomOAuth2Error(error=refusal[0], description=refusal[1], state=data.get("state") or None)
            return self.error_response(OAuthToolkitError(error=error, redirect_uri=data["redirect_uri"]), application)
        response = super().form_valid(form)
        if form.cleaned_data.get("allow") and response.status_code in (301, 302):
            location = response.get("Location", "")
            if "code=" in location:
                record_consent(
                    user=self.request.user, application=application, scopes=form.cleaned_data.get("scope", "").split()
                )
        return response
