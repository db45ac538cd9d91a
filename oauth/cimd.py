"""Client ID Metadata Documents: DOT's SSRF-safe fetcher, the platform's client policy, the client's
profile, plus a test-only loopback allowance.

DOT resolves a CIMD ``client_id`` in its validator (``oauth2_provider.cimd.resolve_cimd_application``):
the configured fetcher returns the document, DOT validates its own rules and upserts the
``Application``. The platform hooks in at the two extension points DOT offers, without forking it:

- the fetcher (``CIMD_METADATA_FETCHER``) runs the same policy as registration
  (``oauth.client_policy``: redirect URIs by application type, inferred when absent, grant types,
  storable strings) and reads how the client authenticates (``cimd_authentication``). A refused
  document raises ``CIMDError``, which DOT treats as an unknown client (and backs off);
- DOT 3.4 builds a public ``Application`` from the document and refuses any
  ``token_endpoint_auth_method`` but ``none`` (its ``_build_application_kwargs``). A ``private_key_jwt``
  document is therefore handed to DOT with ``none``; the declared method and keys go to the client's
  profile, and the validator (``oauth.validators``: ``client_authentication_required``,
  ``authenticate_client``, ``authenticate_client_id``) demands a client assertion from such a client
  (``oauth.client_assertion``). DOT is not forked, and its open PR #1852 (private_key_jwt for CIMD)
  is not carried;
- a ``post_save`` receiver on ``Application`` creates the client's ``ClientProfile`` on first sight
  (application type, software_id, challenge channel from the document or the platform's rule table)
  and keeps type and software_id current when DOT re-fetches a stale document. The fetcher hands the
  accepted facts to the receiver through a context variable (same thread, same request).

``OAUTH_CIMD_TEST_LOOPBACK_ORIGINS`` maps a client_id host to a loopback origin serving its
document over plain HTTP, so tests can serve a real document from 127.0.0.1. It is empty by default
and settings refuse it in production; every other client_id goes through DOT's fetcher (https only,
public addresses only, no redirects, size and time bounded). A ``jwks_uri`` is fetched the same way
(``fetch_key_set``), the allowance included.
"""

from __future__ import annotations

import contextvars
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver
from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher
from oauth2_provider.models import Application
from oauth2_provider.settings import oauth2_settings

from oauth.client_blocks import refusing_block
from oauth.client_policy import (
    ClientAuthentication,
    ClientFacts,
    ClientMetadataError,
    check_client_metadata,
    cimd_authentication,
    offered_grant_types,
)
from oauth.jwks import KeySetError, check_key_set
from oauth.services import update_client_profile

LOOPBACK = {"127.0.0.1", "::1", "localhost"}

# client_id -> facts of the document the fetcher just accepted, consumed by the post_save receiver
_accepted: contextvars.ContextVar[dict[str, tuple[ClientFacts, ClientAuthentication]] | None] = contextvars.ContextVar(
    "cimd_accepted", default=None
)


class PlatformMetadataFetcher(SafeMetadataFetcher):
    def fetch(self, client_id: str):
        metadata, max_age = self.fetch_json(client_id)
        try:
            facts = check_client_metadata(metadata, document=True)
            authentication = cimd_authentication(metadata, private_key_jwt=settings.OAUTH_CIMD_PRIVATE_KEY_JWT)
        except ClientMetadataError as exc:
            raise CIMDError(f"client metadata refused by the platform policy: {exc.error}: {exc.description}") from exc
        if refusing_block(
            client_id=client_id, cimd=True, software_id=facts.software_id, redirect_uris=facts.redirect_uris
        ):
            raise CIMDError("this client is disabled in this tenant")  # the tenant's kill switch
        _accepted.set({client_id: (facts, authentication)})
        # DOT accepts a CIMD document with "none" only (the declared method is in the profile) and with
        # one grant type besides refresh_token (the others the document lists are not offered here)
        accepted = {**metadata, "token_endpoint_auth_method": "none", "grant_types": offered_grant_types(metadata)}
        return accepted, max_age

    def fetch_json(self, url: str):
        """``(json_object, max_age)`` from an https URL through DOT's SSRF-safe fetch (or the test
        allowance); raises CIMDError."""
        parsed = urlsplit(url)
        origin = settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS.get(parsed.hostname or "")
        if origin is None:
            return super().fetch(url)
        if settings.PRODUCTION:  # refused in production: never a loopback/plain-http fetch in production
            raise CIMDError("OAUTH_CIMD_TEST_LOOPBACK_ORIGINS is refused in production")
        target = urlsplit(origin)
        if target.scheme != "http" or target.hostname not in LOOPBACK:
            raise CIMDError("the CIMD test allowance only maps to loopback http origins")
        timeout = oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS
        pool = urllib3.HTTPConnectionPool(target.hostname, target.port or 80, timeout=timeout, retries=False)
        try:
            response = pool.urlopen(
                "GET",
                parsed.path + (f"?{parsed.query}" if parsed.query else ""),
                headers={"Host": parsed.netloc, "Accept": "application/json"},
                redirect=False,
                preload_content=False,
            )
            try:
                return self._read_document(response)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise CIMDError(f"could not fetch client_id document: {exc}") from exc
        finally:
            pool.close()


def fetch_key_set(jwks_uri: str) -> tuple[dict, int]:
    """A CIMD client's key set from its ``jwks_uri`` and how long it may be kept (the answer's
    ``Cache-Control``, clamped like a document's); raises CIMDError."""
    data, max_age = PlatformMetadataFetcher().fetch_json(jwks_uri)
    try:
        return check_key_set(data), max_age
    except KeySetError as exc:
        raise CIMDError(f"jwks_uri: {exc}") from None


@receiver(post_save, sender=Application, dispatch_uid="oauth.cimd.profile")
def record_cimd_profile(sender, instance: Application, **kwargs) -> None:
    """DOT just saved a CIMD application from a document the fetcher accepted: record its profile."""
    if instance.registration_source != Application.RegistrationSource.CIMD:
        return
    pending = _accepted.get() or {}
    accepted = pending.get(instance.client_id)
    if accepted is None:
        return
    _accepted.set(None)
    facts, authentication = accepted
    host = urlsplit(instance.client_id).hostname or ""
    update_client_profile(application=instance, facts=facts, client_id_host=host, authentication=authentication)
