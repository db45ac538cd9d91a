"""Client ID Metadata Documents: DOT's SSRF-safe fetcher, plus a test-only loopback allowance.

``OAUTH_CIMD_TEST_LOOPBACK_ORIGINS`` maps a client_id host to a loopback origin serving its
document over plain HTTP, so tests can serve a real document from 127.0.0.1. It is empty by default
and settings refuse it in production; every other client_id goes through DOT's fetcher (https only,
public addresses only, no redirects, size and time bounded).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher
from oauth2_provider.settings import oauth2_settings

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class PlatformMetadataFetcher(SafeMetadataFetcher):
    def fetch(self, client_id: str):
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
