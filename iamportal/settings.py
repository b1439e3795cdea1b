"""Settings for IAM Portal, driven by the environment.

`DJANGO_ENV` picks the profile: `development` (default: debug, SQLite, console email,
a secret key generated into a git-ignored file) or `production` (everything that
`manage.py check --deploy` asks for; the secret key and allowed hosts must be given).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from iamportal.env import env_bool, env_int, env_list, env_networks, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

ENVIRONMENT = env_str("DJANGO_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be 'development' or 'production', got {ENVIRONMENT!r}."
    )
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_ENV=production.")
    # Development: one random key per checkout, kept out of git, so sessions survive restarts.
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_ENV=production.")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# Load balancers whose X-Forwarded-For is believed (audit.services.client_ip).
TRUSTED_PROXIES = env_networks("IAMPORTAL_TRUSTED_PROXIES")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    # django-ninja: the API (iamportal.api); listed for its templates and static files,
    # so its Swagger UI is served from here rather than a CDN.
    "ninja",
    "accounts",
    "organizations",
    "policies",
    "audit",
    "scim",
    "federation",
    # The project package is an app for its one table, the shared rate-limit counter.
    "iamportal",
]

MIDDLEWARE = [
    # First: an oversized body is refused before anything reads it.
    "iamportal.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "iamportal.middleware.HtmxRedirectMiddleware",
    # Session list, session age and organization MFA enforcement (needs htmx and messages).
    "accounts.middleware.SessionActivityMiddleware",
    "accounts.middleware.OrganizationSecurityMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "iamportal.urls"

# Bodies are bounded before parsing (iamportal.middleware answers 413 above this). The
# largest form, 50 invitation addresses, is about 13 KiB; no page uploads files. Each
# ticked member of a multiple choice is one field, hence Django's 1000 fields is kept.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

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
                "iamportal.context_processors.csp_nonce",
                "iamportal.context_processors.navigation",
                "organizations.context_processors.current_organization",
                "accounts.context_processors.security",
            ],
        },
    },
]

WSGI_APPLICATION = "iamportal.wsgi.application"

# Every form's plain markup written in Python, identical to Django's templates (tests
# compare them on every page): 1-3 ms less on each page that shows a form.
FORM_RENDERER = "iamportal.widgets.PythonRenderer"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DJANGO_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# On PostgreSQL, queries bind their parameters on the server, so one run five times on a
# connection becomes a prepared statement, planned once per connection rather than on
# every request (a page's joins cost PostgreSQL 0.3-0.7 ms of planning each). Turn the
# preparing off behind a pooler in transaction mode that cannot keep prepared statements
# (PgBouncer before 1.21).
DATABASE_PREPARED_STATEMENTS = env_bool("IAMPORTAL_DB_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=5 if DATABASE_PREPARED_STATEMENTS else None,
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# The lock-out backend first: it refuses a locked-out client before any password is checked.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "full_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "organizations:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2

# Operators who create organizations in the admin can switch public sign-up off.
SIGNUP_ENABLED = env_bool("IAMPORTAL_SIGNUP_ENABLED", default=True)
# Links in emails sent without a request (management commands such as seed_demo).
IAMPORTAL_BASE_URL = env_str("IAMPORTAL_BASE_URL", "http://127.0.0.1:8000")


def _secrets_key() -> str:
    """The Fernet key (cryptography) encrypting identity providers' secrets at rest
    (federation.crypto). Development: one per checkout, kept out of git, as the secret key.
    Production: from the environment; without it single sign-on cannot be set up (the
    providers page says so), a junk value stops the server."""
    key = env_str("IAMPORTAL_SECRETS_KEY", "")
    if not key and not PRODUCTION:
        path = BASE_DIR / ".secrets_key"
        if not path.exists():
            path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            path.chmod(0o600)
        key = path.read_text().strip()
    try:
        valid = not key or len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise ImproperlyConfigured(
            "IAMPORTAL_SECRETS_KEY must be a Fernet key: 32 bytes in url-safe base64 (README)."
        )
    return key


IAMPORTAL_SECRETS_KEY = _secrets_key()
# Identity providers on private networks (an on-premises IdP): off in production, where an
# organization's owner must not make the console reach its own networks (federation.oidc).
SSO_PRIVATE_ADDRESSES = env_bool("IAMPORTAL_SSO_PRIVATE_ADDRESSES", default=not PRODUCTION)
# Events with no organization (failed sign-ins of unknown emails) are purged after this.
AUDIT_UNSCOPED_RETENTION_DAYS = env_int("IAMPORTAL_AUDIT_UNSCOPED_RETENTION_DAYS", 90)
# The API's rate limits, requests a minute (0 turns one off): per API key, and per source
# address before authentication (iamportal.api_ratelimit).
API_RATE_PER_KEY = env_int("IAMPORTAL_API_RATE_PER_KEY", 600, minimum=0)
API_RATE_PER_IP = env_int("IAMPORTAL_API_RATE_PER_IP", 1200, minimum=0)
# On PostgreSQL each process keeps the API keys it has looked up for at most this many
# seconds (0: look up on every request). A revocation, a bearer's suspension or any other
# change that bumps the organization's authorization version reaches every process through
# LISTEN/NOTIFY within milliseconds of its commit (organizations.services.api_keys).
API_KEY_CACHE_SECONDS = env_int("IAMPORTAL_API_KEY_CACHE_SECONDS", 10, minimum=0)
# Permission usage (policies.usage) is written in batches every this many seconds per
# process (and at a clean exit): a crash loses at most this window's notes. 0: on every note.
USAGE_FLUSH_SECONDS: int | None = env_int("IAMPORTAL_USAGE_FLUSH_SECONDS", 30, minimum=0)
# Each process' own (short-lived windows, compiled rules). The API's rate limits count in
# the database instead, shared by every process (iamportal.ratelimit).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic target; development serves from the apps' folders and needs none.
STATIC_ROOT = BASE_DIR / "staticfiles" if PRODUCTION else None
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Email: the console backend in development prints password-reset links to the server log.
EMAIL_BACKEND = env_str(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "IAM Portal <no-reply@localhost>")

# Strict CSP: no inline script or style; scripts carry the per-request nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# MFA (django-otp). The issuer names the entry in authenticator apps.
OTP_TOTP_ISSUER = env_str("IAMPORTAL_OTP_ISSUER", "IAM Portal")
# Wrong codes lock a device for 1, 2, 4, 8… seconds (django-otp's throttling).
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# Operators see devices in the admin, never their secret keys or backup codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
MFA_BACKUP_CODE_COUNT = 10
# A password sign-in waits this long for its second step before it must start again.
MFA_PENDING_MAX_AGE = 5 * 60
# Sensitive actions ask for the password or a code again when the last one is older.
SUDO_MAX_AGE = env_int("IAMPORTAL_SUDO_MAX_AGE", 10 * 60)

# Sign-in lock-out (django-axes). Failed passwords are counted per account (the email
# typed, in its canonical form: accounts.emails) and per IP address over the cool-off
# window. An account is locked after the smallest "failed sign-ins before lock-out" of
# its organizations (5 for an address that belongs to no account); an IP after
# LOGIN_FAILURE_LIMIT_PER_IP whatever the accounts tried. See accounts/lockout.py.
AXES_HANDLER = "accounts.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_FORM_FIELD = "username"  # the sign-in form's field and credentials key
AXES_FAILURE_LIMIT = "accounts.lockout.failure_limit"
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_email"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.attempt_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_COOLOFF_TIME = timedelta(minutes=env_int("IAMPORTAL_LOGIN_COOLOFF_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in the audit trail already
AXES_VERBOSE = False
LOGIN_FAILURE_LIMIT_DEFAULT = 5
LOGIN_FAILURE_LIMIT_PER_IP = env_int("IAMPORTAL_LOGIN_FAILURE_LIMIT_PER_IP", 20)

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_COOKIE_AGE", 60 * 60 * 12)
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host- cookies are refused by browsers unless Secure, host-only and Path=/.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env_bool("DJANGO_BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Loggers that print request paths drop the tokens of emailed links ("Not Found:
# /invitations/<token>/"); django.server is Django's runserver set-up plus the filter.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "iamportal.logging.RedactTokensFilter"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"filters": ["redact_tokens"]},
        "django.security.csrf": {"filters": ["redact_tokens"]},
        "django.server": {
            "handlers": ["django.server"],
            "filters": ["redact_tokens"],
            "level": "INFO",
            "propagate": False,
        },
        "django.db.backends": {"level": "INFO"},
        # Lock-outs are in the audit trail; axes' per-attempt lines are noise.
        "axes": {"level": "WARNING"},
        # pysaml2 logs a subject's NameID (an email) at INFO, xmlschema its schema loads.
        "saml2": {"level": "WARNING"},
        "xmlschema": {"level": "WARNING"},
    },
}
