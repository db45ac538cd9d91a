"""Settings, all from the environment (12-factor). See the configuration table in README.md."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.dev_secrets import PRODUCTION_REQUIRED, VAR_DIR, ensure_dev_env

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    missing = [k for k in PRODUCTION_REQUIRED if not os.environ.get(k)]
    if missing:
        raise ImproperlyConfigured(f"production refuses to start without: {', '.join(missing)}")
else:
    for _key, _value in ensure_dev_env().items():
        os.environ.setdefault(_key, _value)

SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:  # DEBUG pages show settings and request data
    raise ImproperlyConfigured("production refuses DEBUG: unset DEBUG (DJANGO_ENV=production)")
PORT = env.int("PORT", default=8000)
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default=f"http://127.0.0.1:{PORT}").rstrip("/")
# Development accepts every host in Django's own (static) check and checks each request itself
# (tenants.hosts, DNS-rebinding protection): loopback names, PUBLIC_BASE_URL's host, the tenant
# domains in the database (added at run time) and these, if set. Production: ALLOWED_HOSTS alone.
DEVELOPMENT_HOSTS = None if PRODUCTION else env.list("ALLOWED_HOSTS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS") if PRODUCTION else ["*"]

# --- apps -------------------------------------------------------------------------------------------
# django-tenants: SHARED_APPS live in the public schema, TENANT_APPS in every tenant schema.
# Sessions, admin log and auth tables are in both, so a tenant's login session exists only in that
# tenant's schema and cannot be replayed against another tenant.
SHARED_APPS = [
    "django_tenants",
    "tenants",
    # the PostgreSQL side of tenancy: template copies, spare schemas, prepared statements (pgtenancy/)
    "pgtenancy",
    "jobs",  # last run of each periodic job per tenant, public schema
    "accounts",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "config.apps.PlatformAdminConfig",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "rest_framework",
    "corsheaders",
    # platform-wide OAuth client policy (challenge-channel rules) in the public schema; oauth/shared/
    "oauth.shared",
    "axes",  # login lockout: platform admin attempts (public schema)
    # lifecycle: no models, only `manage.py auth_lifecycle_test` (lifecycle/)
    "lifecycle",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "config.apps.PlatformAdminConfig",
    "oauth2_provider",
    # the AppConfig path, not "oauth": django-tenants' admin templates map app names to labels and
    # only resolve the custom label ("platform_oauth") from the AppConfig path
    "oauth.apps.OAuthConfig",
    "mcp_tools",
    "crm",
    "connectors",
    "axes",  # login lockout: each tenant's attempts in its own schema (accounts.lockout)
    "observability",  # the audit trail (AuthEvent) in each tenant's schema, metrics, health page
    # enterprise identity: the tenant's own OpenID provider (sign-in, back-channel logout), SCIM, sessions
    "identity",
]
INSTALLED_APPS = list(SHARED_APPS) + [a for a in TENANT_APPS if a not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
AUTH_USER_MODEL = "accounts.User"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
TENANT_PATH_PREFIX = "t"
# New tenants are copies of a migrated template schema (pgtenancy.provisioning), not a replay of every
# migration; migrate_schemas creates and migrates the template before the tenants (pgtenancy.migration).
# The leading underscore keeps it out of reach: no slug and no URL can name it.
TENANT_TEMPLATE_SCHEMA = "_tenant_template"
TENANT_PROVISION_BY_COPY = env.bool("TENANT_PROVISION_BY_COPY", default=True)
# spare copies of the template made ahead of time (pgtenancy.spares): creating a tenant renames one instead
# of running the copy's DDL; replenished after each creation (Celery) and by migrate_schemas; 0: off
TENANT_SPARE_SCHEMAS = env.int("TENANT_SPARE_SCHEMAS", default=2)
GET_EXECUTOR_FUNCTION = "pgtenancy.migration.get_executor"
# tenants that already have every migration get only the post_migrate receivers, not a whole `migrate`
TENANT_MIGRATE_SKIP_CURRENT = env.bool("TENANT_MIGRATE_SKIP_CURRENT", default=True)
# migrate_schemas --executor=multiprocessing: worker processes (one per core is the useful maximum)
TENANT_MULTIPROCESSING_MAX_PROCESSES = env.int("TENANT_MIGRATION_PROCESSES", default=os.cpu_count() or 2)

MIDDLEWARE = [
    "mcp_tools.middleware.McpCorsMiddleware",  # CORS on routing's own answers at /mcp too
    "tenants.middleware.TenantRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",  # HTTPS redirect and HSTS, MCP included
    "mcp_tools.middleware.McpEndpointMiddleware",  # /mcp answered here: the rest is for browsers
    "tenants.middleware.EdgeInputMiddleware",  # NUL/surrogates/charset refused with a 400
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under gunicorn
    "tenants.middleware.TenantSessionCookieMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.LoginRetryAfterMiddleware",  # Retry-After on a throttled login's page
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenant",
            ]
        },
    }
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- database ---------------------------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    from config.embedded_db import embedded_database_url

    DATABASES = {"default": env.db_url_config(embedded_database_url())}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
# Behind a transaction-mode pooler (PgBouncer pool_mode=transaction) the search path must travel with
# every statement (pgtenancy.transaction_pooling; docs/scaling.md). Server-side cursors need a session.
DATABASE_POOLER_TRANSACTION_MODE = env.bool("DATABASE_POOLER_TRANSACTION_MODE", default=False)
if DATABASE_POOLER_TRANSACTION_MODE:
    DATABASES["default"]["ENGINE"] = "pgtenancy.transaction_pooling"
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# the MCP hot path's statements as server-side prepared statements (pgtenancy.prepared). Never behind a
# transaction-mode pooler: they would bypass the per-statement search path of pgtenancy.transaction_pooling
DATABASE_PREPARED_STATEMENTS = (
    env.bool("DATABASE_PREPARED_STATEMENTS", default=True) and not DATABASE_POOLER_TRANSACTION_MODE
)
# close a connection after the request once it has served this many distinct tenant schemas, so a
# PostgreSQL backend's catalog caches and per-schema prepared statements stay bounded whatever the
# number of tenants: about 0.3 MB per schema, so ~0.3 GB per backend at the default (pgtenancy.recycling;
# docs/scaling.md); 0: never
DATABASE_CONNECTION_MAX_SCHEMAS = env.int("DATABASE_CONNECTION_MAX_SCHEMAS", default=1000)
# slug -> tenant pk for /mcp routing (tenants.routing); bounded, holds nothing that can change
TENANT_IDENTITY_CACHE_SIZE = env.int("TENANT_IDENTITY_CACHE_SIZE", default=4096)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
# set search_path only when the schema changes, not before every cursor (halves the queries)
TENANT_LIMIT_SET_CALLS = env.bool("TENANT_LIMIT_SET_CALLS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- security ---------------------------------------------------------------------------------------
FERNET_KEYS = env.list("FERNET_KEYS")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_PROXY", False) else None
# --- production defaults, login lockout, client address -------------------------------------------
# One trusted reverse proxy in front: X-Forwarded-Proto decides is_secure (above) and the right-most
# X-Forwarded-For entry is the client address (tenants.http.client_address); otherwise both are ignored.
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^(t/[a-z][a-z0-9_]*/)?healthz$"]  # plain-HTTP health probes
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 86400 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Login limits (tenants.login_limits): django-axes locks a (username, address) pair; the platform's
# own limiter locks an address only at a far higher count, and throttles (never locks) an account
# that fails from many addresses.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_LOCKOUT_SECONDS", default=900))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # the pair: one list, not the two apart
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=100)
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=20)
LOGIN_ACCOUNT_THROTTLE_SECONDS = env.int("LOGIN_ACCOUNT_THROTTLE_SECONDS", default=30)
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
AXES_CLIENT_IP_CALLABLE = "tenants.http.address_bucket"  # an IPv6 client's /64
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# failures expire by time only, never by a success: otherwise anyone with an account of their own could
# sign in between guesses and keep a counter low (the address and account ones count the same way)
AXES_RESET_ON_SUCCESS = False
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])

# --- i18n / static ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves STATIC_ROOT (filled by `collectstatic`, which make run and the test setup run):
# hashed names with far-future caching and pre-compressed copies, in every environment, so what the
# tests see is what production serves. The admin links /static/... at the host root for every tenant.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Celery -----------------------------------------------------------------------------------------
# Redis when configured; otherwise kombu's filesystem transport, which needs no server (dev only).
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery-queue"
    for _dir in (_queue_dir, VAR_DIR / "celery-control"):
        _dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(VAR_DIR / "celery-control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- logging ----------------------------------------------------------------------------------------
# loggers that would write tokens, codes or secrets are pinned whatever LOG_LEVEL says (config.log_config)
from config.log_config import logging_config  # noqa: E402

LOGGING = logging_config(env.str("LOG_LEVEL", default="INFO"))
# edges: requests Django answers with a 4xx (bad Host header, TooManyFieldsSent, multipart errors) are
# logged as one WARNING line, not with a traceback (at ERROR for the django.security.<exception> loggers)
LOGGING["filters"] = {"client_error": {"()": "config.log_filters.ClientErrorFilter"}}
_CLIENT_ERRORS = (
    "DisallowedHost",
    "TooManyFieldsSent",
    "TooManyFilesSent",
    "RequestDataTooBig",
    "SuspiciousMultipartForm",
)
for _name in ("django.request", *(f"django.security.{e}" for e in _CLIENT_ERRORS)):
    LOGGING["loggers"][_name] = {"filters": ["client_error"]}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

LOGIN_URL = "login"

# --- MCP endpoint ----------------------------------------------------------------------------------
# Browser origins allowed to call a tenant's MCP endpoint (DNS-rebinding protection); requests with
# no Origin (non-browser clients) and same-origin requests are always allowed.
MCP_ALLOWED_ORIGINS = env.list("MCP_ALLOWED_ORIGINS", default=["https://chatgpt.com", "https://claude.ai"])
MCP_MAX_BODY_BYTES = env.int("MCP_MAX_BODY_BYTES", default=1024 * 1024)

BENCH_VIEWS = env.bool("BENCH_VIEWS", default=False) and not PRODUCTION

# --- exactly-once: idempotency keys on write tools (mcp_tools.idempotency) --------------------------
# how long a stored result answers a retry (the purge job deletes older records, hourly, per tenant)
IDEMPOTENCY_RETENTION_SECONDS = env.int("IDEMPOTENCY_RETENTION_SECONDS", default=24 * 3600)
# a tool that writes upstream claims its key first; a claim older than this is taken over by a retry
IDEMPOTENCY_PENDING_LEASE_SECONDS = env.int("IDEMPOTENCY_PENDING_LEASE_SECONDS", default=120)
# how long a duplicate of an upstream call still running waits for it before "in progress" (retryable)
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=10.0)

# --- cache (rate limits, CIMD fetch back-off) -------------------------------------------------------
CACHES = {
    "default": {
        **(
            {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                # a Redis that does not answer costs a request at most this long: the rate limits then
                # fail open (tenants.ratelimit) instead of hanging or failing the token endpoint
                "OPTIONS": {
                    "socket_connect_timeout": env.float("CACHE_REDIS_TIMEOUT", default=0.5),
                    "socket_timeout": env.float("CACHE_REDIS_TIMEOUT", default=0.5),
                },
            }
            if REDIS_URL
            else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        ),
        # keys are prefixed with the current schema, so one tenant cannot read another's entries
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# --- CORS: browser-based MCP clients discover, register and exchange tokens cross-origin ------------
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_URLS_REGEX = r"^/(\.well-known/.*|token/|register/|revoke_token/)$"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "mcp-protocol-version")

# --- OAuth authorization server (django-oauth-toolkit, per tenant) ---------------------------------
from django.conf import global_settings  # noqa: E402

from oauth.lifetimes import access_token_expires_in  # noqa: E402

OAUTH_ACCESS_TOKEN_SECONDS = env.int("OAUTH_ACCESS_TOKEN_SECONDS", default=900)  # per-tenant override on Tenant
OAUTH_REFRESH_TOKEN_IDLE_SECONDS = env.int("OAUTH_REFRESH_TOKEN_IDLE_SECONDS", default=14 * 86400)
OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS = env.int("OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS", default=90 * 86400)
OAUTH_REFRESH_GRACE_SECONDS = env.int("OAUTH_REFRESH_GRACE_SECONDS", default=30)
# refresh (engineer "refresh"): after a 403 insufficient_scope, refreshes of that token family that do
# not ask for the challenged scope are refused for this long (oauth.stepup; TS SDK 1.x step-up)
OAUTH_STEP_UP_REFRESH_WINDOW_SECONDS = env.int("OAUTH_STEP_UP_REFRESH_WINDOW_SECONDS", default=300)
OAUTH_DCR_CLIENT_IDLE_SECONDS = env.int("OAUTH_DCR_CLIENT_IDLE_SECONDS", default=30 * 86400)
OAUTH_DCR_RATE_LIMIT = (env.int("OAUTH_DCR_RATE_LIMIT", default=30), 3600)  # registrations per address per hour
OAUTH_CIMD_TEST_LOOPBACK_ORIGINS: dict[str, str] = {}  # tests only; refused in production (oauth.cimd)
# CIMD clients whose document declares private_key_jwt authenticate with an RFC 7523 client assertion
# (oauth.client_assertion). Off: such a document is accepted as a public client only if it also lists
# "none" in token_endpoint_auth_methods_supported, and private_key_jwt is not advertised.
OAUTH_CIMD_PRIVATE_KEY_JWT = env.bool("OAUTH_CIMD_PRIVATE_KEY_JWT", default=True)
OAUTH_CLIENT_ASSERTION_MAX_SECONDS = env.int("OAUTH_CLIENT_ASSERTION_MAX_SECONDS", default=300)  # exp - now, at most
OAUTH_JWKS_REFETCH_SECONDS = env.int("OAUTH_JWKS_REFETCH_SECONDS", default=60)  # per client, on an unknown kid
# enterprise-managed authorization (oauth.id_jag): an ID-JAG's exp - iat, at most (short-lived grants only)
OAUTH_ID_JAG_MAX_SECONDS = env.int("OAUTH_ID_JAG_MAX_SECONDS", default=300)
# token endpoint: (requests, window seconds) per tenant and client address, and per tenant and client_id
OAUTH_TOKEN_RATE_LIMIT = (env.int("OAUTH_TOKEN_RATE_LIMIT", default=60), 60)
OAUTH_TOKEN_CLIENT_RATE_LIMIT = (env.int("OAUTH_TOKEN_CLIENT_RATE_LIMIT", default=600), 60)

# client secrets: one salted HMAC-SHA256 instead of PBKDF2's million rounds, which cost ~0.3 s per token
# request of a confidential client (oauth.hashers says why that is safe for random secrets). Listed
# after the password hashers so Django identifies it; user passwords keep the first one.
PASSWORD_HASHERS = [*global_settings.PASSWORD_HASHERS, "oauth.hashers.ClientSecretHasher"]

OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "oauth.validators.TenantOAuth2Validator",
    "OAUTH2_BACKEND_CLASS": "oauth.backends.TenantOAuthLibCore",
    # oauthlib's server plus the JWT bearer grant for ID-JAGs (enterprise-managed authorization)
    "OAUTH2_SERVER_CLASS": "oauth.server.TenantServer",
    # scopes are declared by the apps that own them (declarations.scopes), not listed here
    "SCOPES_BACKEND_CLASS": "oauth.scope_backend.DeclaredScopes",
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_SECONDS,
    "EXTRA_SERVER_KWARGS": {"token_expires_in": access_token_expires_in},
    "ACCESS_TOKEN_GENERATOR": "oauth.token_values.random_token",  # 256 bits, one read of the OS CSPRNG
    # refresh tokens: rotated on every use (DOT's default), reuse revokes the family, idle timeout
    # (counted from the last access token's expiry) and absolute lifetime (oauth.validators)
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OAUTH_REFRESH_TOKEN_IDLE_SECONDS,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": OAUTH_REFRESH_GRACE_SECONDS,
    # RFC 9700 gates. The DOT defaults the platform relies on (PKCE required, no wildcard redirect
    # URIs, approval prompt "force", 60 s codes, ...) are not restated: README "RFC 9700" lists them
    # and tests/test_oauth_settings.py asserts their effective values.
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    # clients: dynamic registration (anonymous, under policy) and Client ID Metadata Documents
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS": 30 * 86400,
    "CIMD_ENABLED": True,
    "CIMD_METADATA_FETCHER": "oauth.cimd.PlatformMetadataFetcher",
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none", "client_secret_basic", "client_secret_post"],
    "CLIENT_SECRET_HASHER": "client_secret_sha256",  # oauth.hashers.ClientSecretHasher
}
# E001 refuses DOT's grace period with hashed storage because DOT's grace hands back the stored
# cleartext pair. The platform answers a duplicate refresh from its own Fernet-encrypted copy of the
# successor pair, kept for the grace window only, and never reaches DOT's branch (oauth.validators).
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.E001"]

# --- connectors: the platform as OAuth client of upstream providers (connectors/) ----------------
# loopback http providers only outside production (tests, `make run`); production refuses them anyway
CONNECTORS_ALLOW_LOOPBACK_HTTP = env.bool("CONNECTORS_ALLOW_LOOPBACK_HTTP", default=not PRODUCTION)
# a total deadline per outbound call: connect, TLS, headers and body together (connectors.http)
CONNECTORS_HTTP_TIMEOUT_SECONDS = env.float("CONNECTORS_HTTP_TIMEOUT_SECONDS", default=10.0)
CONNECTORS_HTTP_MAX_BYTES = env.int("CONNECTORS_HTTP_MAX_BYTES", default=1024 * 1024)
CONNECTORS_REFRESH_MARGIN_SECONDS = env.int("CONNECTORS_REFRESH_MARGIN_SECONDS", default=60)
CONNECTORS_REFRESH_ATTEMPTS = env.int("CONNECTORS_REFRESH_ATTEMPTS", default=3)
CONNECTORS_RETRY_BASE_DELAY_SECONDS = env.float("CONNECTORS_RETRY_BASE_DELAY_SECONDS", default=0.5)
CONNECTORS_RETRY_MAX_DELAY_SECONDS = env.float("CONNECTORS_RETRY_MAX_DELAY_SECONDS", default=10.0)
CONNECTORS_LOCK_WAIT_SECONDS = env.int("CONNECTORS_LOCK_WAIT_SECONDS", default=30)
# calls in flight to one provider app (token endpoint + client id) per tenant, across every process
# (connectors.slots); keep it below GUNICORN_THREADS so a stuck provider never holds a whole worker
CONNECTORS_PROVIDER_CONCURRENCY = env.int("CONNECTORS_PROVIDER_CONCURRENCY", default=3)
CONNECTORS_PROVIDER_QUEUE_SECONDS = env.float("CONNECTORS_PROVIDER_QUEUE_SECONDS", default=2.0)
# the provider-wide breaker (connectors.breaker)
CONNECTORS_BREAKER_FAILURES = env.int("CONNECTORS_BREAKER_FAILURES", default=3)
CONNECTORS_BREAKER_OPEN_SECONDS = env.float("CONNECTORS_BREAKER_OPEN_SECONDS", default=30.0)
CONNECTORS_BREAKER_MAX_OPEN_SECONDS = env.float("CONNECTORS_BREAKER_MAX_OPEN_SECONDS", default=900.0)
CONNECTORS_BREAKER_RECOVERY_SPREAD_SECONDS = env.float("CONNECTORS_BREAKER_RECOVERY_SPREAD_SECONDS", default=60.0)
# provider endpoints must be on the issuer's origin, named by its discovery document or a preset's
# documented hosts; only the platform operator can allow others (connectors.endpoints)
CONNECTORS_ALLOW_CROSS_ORIGIN_ENDPOINTS = env.bool("CONNECTORS_ALLOW_CROSS_ORIGIN_ENDPOINTS", default=False)
# a user-forced refresh (REST "refresh now") of one account at most this often; 429 + Retry-After otherwise
CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS = env.int("CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS", default=30)

# --- enterprise identity (identity/): the tenant's OpenID provider as sign-in, SCIM provisioning ------
# loopback http issuers only outside production (tests, `make run`); production refuses them anyway
IDENTITY_ALLOW_LOOPBACK_HTTP = env.bool("IDENTITY_ALLOW_LOOPBACK_HTTP", default=not PRODUCTION)
IDENTITY_HTTP_TIMEOUT_SECONDS = env.float("IDENTITY_HTTP_TIMEOUT_SECONDS", default=10.0)
IDENTITY_HTTP_MAX_BYTES = env.int("IDENTITY_HTTP_MAX_BYTES", default=1024 * 1024)
IDENTITY_SSO_STATE_SECONDS = env.int("IDENTITY_SSO_STATE_SECONDS", default=600)  # a pending sign-in
IDENTITY_SCIM_TOKEN_GRACE_SECONDS = env.int("IDENTITY_SCIM_TOKEN_GRACE_SECONDS", default=24 * 3600)
# an identity provider's JWKS is fetched again on an unknown kid at most this often (identity.keys)
IDENTITY_JWKS_REFETCH_SECONDS = env.int("IDENTITY_JWKS_REFETCH_SECONDS", default=60)

# --- observability: metrics and the audit trail -----------------------------------------------------
# H/metrics answers only a scraper presenting this bearer token (a generated default in var/dev.env in
# development; unset in production = /metrics refuses everyone). Multiprocess metrics: make run sets
# PROMETHEUS_MULTIPROC_DIR for gunicorn and Celery (observability.metrics).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
AUDIT_ENABLED = env.bool("AUDIT_ENABLED", default=True)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=90)
# successful tools/call are counted in metrics; this fraction of them is also an AuthEvent (0 = none)
AUDIT_TOOL_CALL_SAMPLE_RATE = env.float("AUDIT_TOOL_CALL_SAMPLE_RATE", default=0.0)

# --- lifecycle jobs ---------------------------------------------------------------------------------
CELERY_TASK_ACKS_LATE = True  # a task killed mid-run is redelivered; every job is idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a worker reserves one task at a time: parallel workers share
CONNECTORS_REFRESH_WINDOW_SECONDS = env.int("CONNECTORS_REFRESH_WINDOW_SECONDS", default=600)
CONNECTORS_REFRESH_JITTER_SECONDS = env.float("CONNECTORS_REFRESH_JITTER_SECONDS", default=20.0)
CONNECTORS_REFRESH_BATCH_SIZE = env.int("CONNECTORS_REFRESH_BATCH_SIZE", default=50)
CONNECTORS_REFRESH_PARALLEL_TASKS = env.int("CONNECTORS_REFRESH_PARALLEL_TASKS", default=8)
CONNECTORS_REFRESH_LEASE_SECONDS = env.int("CONNECTORS_REFRESH_LEASE_SECONDS", default=120)
CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS = env.float("CONNECTORS_REFRESH_BACKOFF_BASE_SECONDS", default=30.0)
CONNECTORS_REFRESH_BACKOFF_MAX_SECONDS = env.float("CONNECTORS_REFRESH_BACKOFF_MAX_SECONDS", default=900.0)
CONNECTORS_REFRESH_GIVE_UP_SECONDS = env.int("CONNECTORS_REFRESH_GIVE_UP_SECONDS", default=6 * 3600)
CONNECTORS_REVOCATION_BACKOFF_MAX_SECONDS = env.float("CONNECTORS_REVOCATION_BACKOFF_MAX_SECONDS", default=3600.0)
OAUTH_SWEEP_BATCH_SIZE = env.int("OAUTH_SWEEP_BATCH_SIZE", default=500)
