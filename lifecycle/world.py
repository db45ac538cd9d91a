"""The throwaway world of one run: two tenants (A and B), three users, a few CRM contacts, created
with the provisioning services and removed afterwards, whatever happened in between."""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass, field

import httpx
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name, schema_context

from accounts.models import User
from crm.models import Contact
from probe.oauth_flow import Browser, Client, Tenant, obtain_tokens, register
from tenants.models import Tenant as TenantRow
from tenants.services import TenantServiceError, add_user, create_tenant, deactivate_tenant, remove_user

logger = logging.getLogger(__name__)

CONTACTS = {"a": 3, "b": 6}  # B has more, so some of B's contact ids do not exist in A


@dataclass
class World:
    base_url: str
    run: str
    password: str
    a: str = field(init=False)  # tenant slugs
    b: str = field(init=False)
    member: str = field(init=False)  # member of A and of B
    leaver: str = field(init=False)  # member of A, removed during the run
    admin: str = field(init=False)  # admin of A, demoted during the run
    deprovisioned: str = field(init=False)  # member of A and of B, deactivated at A through SCIM
    idjag: str = field(init=False)  # member of A, vouched for by an ID-JAG, removed during the run
    idp_host: str = "127.0.0.1"  # where the throwaway IdP listens (the deployment must reach it)
    _jars: dict[str, httpx.Client] = field(default_factory=dict, repr=False)
    _signed_in: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.a, self.b = f"lifecycle_{self.run}_a", f"lifecycle_{self.run}_b"
        self.member, self.leaver, self.admin, self.deprovisioned, self.idjag = (
            f"lifecycle-{self.run}-{who}@lifecycle.test" for who in ("member", "leaver", "admin", "scim", "idjag")
        )

    @property
    def slugs(self) -> tuple[str, str]:
        return self.a, self.b

    @property
    def emails(self) -> tuple[str, ...]:
        return self.member, self.leaver, self.admin, self.deprovisioned, self.idjag

    def tenant(self, slug: str) -> Tenant:
        return Tenant(f"{self.base_url}/t/{slug}", slug)

    def mcp(self, slug: str) -> str:
        return self.tenant(slug).mcp

    def browser(self, slug: str, email: str) -> Browser:
        """``email``'s browser, signed in at ``slug``: one cookie jar per person, so one person's
        sessions at A and B live side by side as in a real browser (per-tenant session cookies)."""
        jar = self._jars.setdefault(email, httpx.Client(follow_redirects=False, timeout=30))
        browser = Browser(self.tenant(slug), email, self.password, http=jar)
        if (slug, email) not in self._signed_in:
            browser.login()
            self._signed_in.add((slug, email))
        return browser

    def tokens(self, slug: str, email: str, scope: str) -> tuple[Client, dict]:
        """A freshly registered client and a token pair for ``email`` at ``slug`` (PKCE, consent page)."""
        client = register(self.tenant(slug), client_name=f"lifecycle {self.run}")
        return client, obtain_tokens(self.browser(slug, email), client, scope=scope)

    def contact_ids(self, slug: str) -> list[int]:
        with schema_context(slug):
            return sorted(Contact.objects.values_list("pk", flat=True))

    def user_id(self, email: str) -> int:
        return User.objects.get(email=email).pk

    def close(self) -> None:
        for jar in self._jars.values():
            jar.close()


def provision(base_url: str, idp_host: str = "127.0.0.1") -> World:
    world = World(base_url=base_url, run=secrets.token_hex(4), password=secrets.token_urlsafe(24), idp_host=idp_host)
    for label, slug in (("A", world.a), ("B", world.b)):
        create_tenant(slug=slug, name=f"Lifecycle {world.run} {label}")
    add_user(slug=world.a, email=world.member, password=world.password, role="member")
    add_user(slug=world.b, email=world.member, password=world.password, role="member")
    add_user(slug=world.a, email=world.leaver, password=world.password, role="member")
    add_user(slug=world.a, email=world.admin, password=world.password, role="admin")
    add_user(slug=world.a, email=world.idjag, password=world.password, role="member")
    for slug in world.slugs:
        add_user(slug=slug, email=world.deprovisioned, password=world.password, role="member")
    for key, slug in (("a", world.a), ("b", world.b)):
        with schema_context(slug):  # demo rows for the tools to read (no service creates contacts)
            Contact.objects.bulk_create(
                Contact(name=f"Lifecycle {key.upper()}{n}", email=f"c{n}@{key}.lifecycle.test", company=slug)
                for n in range(1, CONTACTS[key] + 1)
            )
    return world


def cleanup(world: World) -> list[str]:
    """Deactivate and remove the throwaway tenants (schemas dropped) and users; never raises.
    Returns what could not be removed."""
    problems: list[str] = []
    world.close()
    for slug in world.slugs:
        for email in world.emails:
            with contextlib.suppress(TenantServiceError):  # not a member there, or already gone
                remove_user(slug=slug, email=email)
        try:
            deactivate_tenant(slug=slug)
        except TenantServiceError:
            pass
        except Exception as exc:  # keep going: the rest must still be removed
            problems.append(f"deactivate {slug}: {type(exc).__name__}")
        try:
            with schema_context(get_public_schema_name()):
                row = TenantRow.objects.filter(schema_name=slug).first()
                if row is not None:
                    row.delete(force_drop=True)  # drops the schema (CASCADE), then the row and its memberships
        except Exception as exc:
            problems.append(f"remove {slug}: {type(exc).__name__}")
    for email in world.emails:
        try:
            _remove_user(email)
        except Exception as exc:
            problems.append(f"remove user {email}: {type(exc).__name__}")
    connection.set_schema_to_public()
    return problems


def _remove_user(email: str) -> None:
    """Delete the user row directly: the ORM's cascade would look for OAuth token tables in the public
    schema, where they do not exist (they live in the tenant schemas, dropped above). If something
    still refers to the user, leave it disabled instead."""
    user = User.objects.filter(email=email).first()
    if user is None:
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE id = %s", [user.pk])  # noqa: S608 (table name)
    except Exception:
        logger.warning("lifecycle: user %s still referenced; disabled instead of deleted", user.pk)
        user.is_active = False
        user.set_unusable_password()
        user.save(update_fields=["is_active", "password"])
