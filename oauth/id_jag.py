"""Enterprise-managed authorization: an Identity Assertion JWT Authorization Grant (ID-JAG,
draft-ietf-oauth-identity-assertion-authz-grant; MCP's "enterprise-managed authorization" extension)
presented at the tenant's token endpoint with the RFC 7523 JWT bearer grant (``oauth.jwt_bearer``).

The enterprise's identity provider, which the tenant trusts for this (``IdentityProvider.accept_id_jag``:
``tenant_idp_add --accept-id-jag`` or the tenant admin), vouches that its user lets this client act
for them; the tenant issues an access token with no browser and no consent screen. ``accept`` checks,
in this order, and each refusal is a ``Refused`` with a closed ``reason`` (the audit trail's outcome)
and a description for the client (never the assertion, a key or a secret):

1. at most ``MAX_ASSERTION_BYTES``, a compact JWS whose header ``typ`` is ``oauth-id-jag+jwt`` (the
   ``application/`` prefix allowed, case-insensitive: RFC 7515 §4.1.9) and whose ``alg`` is one of
   ``identity.keys.ALGORITHMS`` (asymmetric only: never ``none``, never an HMAC keyed with a public key);
2. ``iss`` is an enabled identity provider of *this* tenant that accepts ID-JAGs. Provider records
   live in the tenant's schema, so another tenant's provider is simply unknown here;
3. the signature, with that issuer's keys (``identity.keys``: the discovery document's ``jwks_uri``
   through the SSRF-safe fetch of ``identity.outbound``, cached, fetched again on an unknown ``kid``);
4. ``aud`` is this tenant's issuer, as a string or as an array of exactly that one value;
5. ``client_id`` is the client that authenticated at the token endpoint;
6. ``exp`` and ``iat`` present, not expired, ``iat`` not ahead, ``exp - iat`` at most
   ``OAUTH_ID_JAG_MAX_SECONDS`` (short lifetimes only); ``jti`` and ``sub`` present. No ``jti`` record:
   the draft lets the same client present its ID-JAG again while it is valid to get a new access
   token (its replacement for refresh tokens); another client fails step 5, a late one step 6;
7. ``resource``, one value, one of this tenant's resources (``oauth.issuer.allowed_resources``: the
   MCP endpoint or the REST API; absent: the MCP endpoint), and a ``resource`` parameter, if sent,
   names the same one: the token is bound to it (RFC 8707) as an authorization-code token is;
8. ``sub`` → an active member of this tenant through ``identity.sign_in.resolve_member`` (the
   (provider, ``sub``) link an SSO sign-in recorded; else, with ``link_by_email``, the verified email of
   a listed domain; else JIT as the record's ``jit_role`` allows), the role following the record's
   role claim only when the ID-JAG carries it;
9. scope = the requested scope (the ID-JAG's ``scope`` when the request names none) ∩ the ID-JAG's
   ``scope`` ∩ the scopes the member's role may hold (admin-only scopes only for admins, as on the
   consent page). An ID-JAG without ``scope`` grants nothing. Empty: ``invalid_scope``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from declarations.scopes import admin_only_scopes, all_scopes
from identity import keys
from identity.errors import IdentityError
from identity.models import IdentityProvider
from identity.selectors import id_jag_providers
from identity.sign_in import resolve_member
from oauth.grant_types import ID_JAG_TYP
from tenants.selectors import active_membership

User = get_user_model()

MAX_ASSERTION_BYTES = 16_384
LEEWAY_SECONDS = 30


class Refused(Exception):
    """``error``: the OAuth error code (``invalid_grant``, ``invalid_scope``, ``invalid_target``);
    ``reason``: a short closed word for the audit trail; ``description``: for the client."""

    def __init__(self, error: str, reason: str, description: str, *, user_id: int | None = None) -> None:
        super().__init__(description)
        self.error, self.reason, self.description, self.user_id = error, reason, description, user_id


@dataclass(frozen=True)
class Accepted:
    user: Any  # the member the ID-JAG is for
    provider: IdentityProvider  # the record that vouched for it
    scopes: tuple[str, ...]
    resource: str
    found_by: str  # "link", "email" or "jit" (identity.sign_in)


def _grant(reason: str, description: str, **kwargs) -> Refused:
    return Refused("invalid_grant", reason, description, **kwargs)


def _unverified(assertion: str) -> tuple[dict, dict]:
    """The header and claims of a compact JWS, before any check of its signature."""
    try:
        compact = extract_compact(assertion.encode())
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise _grant("malformed", "assertion is not a compact JWS") from None
    header = compact.protected
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _grant("malformed", "assertion is not a JWT")
    return header, claims


def _typ_ok(typ: object) -> bool:
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ == ID_JAG_TYP or typ == f"application/{ID_JAG_TYP}"


def _single(value: object, name: str) -> str | None:
    """A claim that may be a string or an array of exactly one string; None when absent."""
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != 1:
            raise _grant(f"multiple_{name}", f"the ID-JAG's {name} must be a single value")
        value = value[0]
    if not isinstance(value, str) or not value:
        raise _grant(f"invalid_{name}", f"the ID-JAG's {name} must be a string")
    return value


def _number(claims: dict, name: str) -> float:
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _grant("missing_claim", f"the ID-JAG has no {name} claim")
    return float(value)


def _check_times(claims: dict) -> None:
    now, longest = time.time(), int(settings.OAUTH_ID_JAG_MAX_SECONDS)
    expires, issued = _number(claims, "exp"), _number(claims, "iat")
    if expires <= now - LEEWAY_SECONDS:
        raise _grant("expired", "the ID-JAG has expired")
    if issued > now + LEEWAY_SECONDS:
        raise _grant("not_yet_valid", "the ID-JAG's iat is in the future")
    if expires - issued > longest:
        raise _grant("too_long_lived", f"the ID-JAG lives longer than {longest} s (exp - iat)")
    if "nbf" in claims and _number(claims, "nbf") > now + LEEWAY_SECONDS:
        raise _grant("not_yet_valid", "the ID-JAG's nbf is in the future")
    for name in ("jti", "sub"):
        value = claims.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= 255:
            raise _grant("missing_claim", f"the ID-JAG's {name} must be a string of 1 to 255 characters")


def _resource(claims: dict, requested: list[str], resources: tuple[str, ...]) -> str:
    resource = _single(claims.get("resource"), "resource") or resources[0]
    if resource not in resources:
        raise _grant("wrong_resource", "the ID-JAG's resource is not a resource of this tenant")
    if requested and requested != [resource]:
        raise Refused(
            "invalid_target", "resource_mismatch", "the resource parameter differs from the ID-JAG's resource"
        )
    return resource


def _scopes(claims: dict, requested: list[str], *, is_admin: bool | None, user_id: int | None) -> tuple[str, ...]:
    """The granted scopes; ``is_admin`` None: before the member is known (no role filter yet), so an
    ID-JAG that can grant nothing is refused before a member is looked up or created."""
    vouched = claims.get("scope")
    if vouched is not None and not isinstance(vouched, str):
        raise _grant("invalid_scope_claim", "the ID-JAG's scope must be a space-separated string", user_id=user_id)
    vouched_set = set((vouched or "").split())
    allowed = set(all_scopes())
    if is_admin is False:
        allowed -= admin_only_scopes()
    granted = set(requested or vouched_set) & vouched_set & allowed
    if not granted:
        raise Refused(
            "invalid_scope",
            "no_scope",
            "no scope left: the requested scope, the ID-JAG's scope and what this member's role may hold do not meet",
            user_id=user_id,
        )
    return tuple(sorted(granted))


def _member(tenant, provider: IdentityProvider, claims: dict) -> tuple[Any, str]:
    """``resolve_member``, once more after a unique violation: two first presentations for the same
    new member at once (a client's parallel requests) race to create it; the second attempt finds what
    the first committed."""
    for attempt in (1, 2):
        try:
            return resolve_member(tenant=tenant, provider=provider, claims=claims, role_when_present=True)
        except IdentityError as exc:
            raise _grant(exc.code, str(exc)) from None
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def accept(
    assertion: object,
    *,
    client_id: str,
    issuer: str,
    resources: tuple[str, ...],
    requested_scopes: list[str],
    requested_resources: list[str],
) -> Accepted:
    """The member and grant this ID-JAG stands for at this tenant (``issuer``: the tenant's issuer as
    the request sees it; ``resources``: its resources, the default first), or ``Refused``."""
    if not isinstance(assertion, str) or not assertion:
        raise Refused("invalid_request", "missing_assertion", "assertion (the ID-JAG) is required")
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise _grant("too_large", f"assertion is larger than {MAX_ASSERTION_BYTES} bytes")
    header, unverified = _unverified(assertion)
    if not _typ_ok(header.get("typ")):
        raise _grant("wrong_typ", f"the assertion is not an ID-JAG: its typ header must be {ID_JAG_TYP}")
    if header.get("alg") not in keys.ALGORITHMS:
        raise _grant("alg_not_allowed", f"an ID-JAG must be signed with one of {', '.join(keys.ALGORITHMS)}")
    claimed_issuer = unverified.get("iss")
    providers = id_jag_providers(claimed_issuer) if isinstance(claimed_issuer, str) else []
    if not providers:
        raise _grant("unknown_issuer", "the ID-JAG's issuer is not an identity provider this tenant trusts for ID-JAGs")
    provider = providers[0]  # one issuer, one set of keys; its record's links and rules apply
    try:
        claims = dict(keys.decode(provider, assertion).claims)
    except IdentityError as exc:
        raise _grant(exc.code, str(exc)) from None
    if claims.get("iss") != provider.issuer:
        raise _grant("unknown_issuer", "the ID-JAG's issuer is not an identity provider this tenant trusts")
    if _single(claims.get("aud"), "aud") != issuer:
        raise _grant("wrong_audience", f"the ID-JAG's aud must be this tenant's issuer, {issuer}")
    if claims.get("client_id") != client_id:
        raise _grant("client_mismatch", "the ID-JAG was issued to another client (its client_id claim)")
    _check_times(claims)
    resource = _resource(claims, requested_resources, resources)
    _scopes(claims, requested_scopes, is_admin=None, user_id=None)  # nothing to grant: no member looked up
    tenant = connection.tenant
    user, found_by = _member(tenant, provider, claims)
    membership = active_membership(user.pk, tenant.pk)
    if membership is None:
        raise _grant("not_a_member", "this account is not a member here", user_id=user.pk)
    scopes = _scopes(claims, requested_scopes, is_admin=membership.is_admin, user_id=user.pk)
    return Accepted(user=user, provider=provider, scopes=scopes, resource=resource, found_by=found_by)
