"""Client ID Metadata Documents: DOT's SSRF-safe fetcher, the platform's client policy, the client's
profile, plus a test-only loopback allowance.

DOT resolves a CIMD ``client_id`` in its validator (``oauth2_provider.cimd.resolve_cimd_application``):
the configured fetcher returns the document, DOT validates its own rules and upserts the
``Application``. The platform hooks in at the two extension points DOT offers, without forking it:

- the fetcher (``CIMD_METADATA_FETCHER``) runs the same policy as registration
  (``oauth.client_policy``: redirect URIs by application type, inferred when absent, grant types,
  storable strings). A refused document raises ``CIMDError``, which DOT treats as an unknown client
  (and backs off);
- a ``post_save`` receiver on ``Application`` creates the client's ``ClientProfile`` on first sight
  (application type, software_id, challenge channel from the document or the platform's rule table)
  and keeps type and software_id current when DOT re-fetches a stale document. The fetcher hands the
  accepted facts to the receiver through a context variable (same thread, same request).

``OAUTH_CIMD_TEST_LOOPBACK_ORIGINS`` maps a client_id host to a loopback origin serving its
document over plain HTTP, so tests can serve a real document from 127.0.0.1. It is empty by default
and settings refuse it in production; every other client_id goes through DOT's fetcher (https only,
public addresses only, no redirects, size and time bounded).
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
from oauth.client_policy import ClientFacts, ClientMetadataError, check_client_metadata
from oauth.services import update_client_profile

LOOPBACK = {"127.0.0.1", "::1", "localhost"}

# client_id -> facts of the document the fetcher just accepted, consumed by the post_save receiver
_accepted: contextvars.ContextVar[dict[str, ClientFacts] | None] = contextvars.ContextVar("cimd_accepted", default=None)


class PlatformMetadataFetcher(SafeMetadataFetcher):
    def fetch(self, client_id: str):
        metadata, max_age = self._fetch(client_id)
        try:
            facts = check_client_metadata(metadata)
        except ClientMetadataError as exc:
            raise CIMDError(f"client metadata refused by the platform policy: {exc.error}: {exc.description}") from exc
        if refusing_block(
            client_id=client_id, cimd=True, software_id=facts.software_id, redirect_uris=facts.redirect_uris
        ):
            raise CIMDError("this client is disabled in this tenant")  # the tenant's kill switch
        _accepted.set({client_id: facts})
        return metadata, max_age

    def _fetch(self, client_id: str):
        parsed = urlsplit(client_id)
        origin = settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS.get(parsed.hostname or "")
        if origin is None:
            return super().fetch(client_id)
        if settings.PRODUCTION:  # the promised refusal (issue 8): never a loopback/plain-http fetch in production
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


@receiver(post_save, sender=Application, dispatch_uid="oauth.cimd.profile")
def record_cimd_profile(sender, instance: Application, **kwargs) -> None:
    """DOT just saved a CIMD application from a document the fetcher accepted: record its profile."""
    if instance.registration_source != Application.RegistrationSource.CIMD:
        return
    pending = _accepted.get() or {}
    facts = pending.get(instance.client_id)
    if facts is None:
        return
    _accepted.set(None)
    update_client_profile(application=instance, facts=facts, client_id_host=urlsplit(instance.client_id).hostname or "")
