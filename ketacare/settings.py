"""One settings module, read from the environment (STYLE 10).

A fresh checkout runs on SQLite in the project folder with Celery in eager mode; set
``DATABASE_URL`` for PostgreSQL and ``CELERY_BROKER_URL`` for Redis. With ``DEBUG`` off the app
refuses to start without a real ``SECRET_KEY``.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from ketacare.objectstore import s3_storage

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
_DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters when DEBUG is off "
        "(for local development, set DEBUG=1)."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "audit",
    "patients",
    "courses",
    "assessments",
    "reports",
    "exports",
    "outcomes",
    "selfreport",
    "clinic",
    "rems",
    "guidance",
    "demo",
    "bench",  # benchmark commands only: no models, no production URLs
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, answered before sessions, logins and the host check;
    # every other request timed for the metrics (ketacare.ops).
    "ketacare.ops.OpsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ketacare.cache.PrivateByDefaultMiddleware",  # no-store unless a view says public
    "django.contrib.sessions.middleware.SessionMiddleware",
    "accounts.idle.IdleTimeoutMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.twofactor.SessionOTPMiddleware",  # django-otp's, without a query
    "accounts.twofactor.RequireTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "audit.aside.AuditAsideMiddleware",  # a view's audit row committed before it answers
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "ketacare.urls"
WSGI_APPLICATION = "ketacare.wsgi.application"

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
                "ketacare.context_processors.clinic",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Each web process keeps its database connection for a minute instead of opening one per
# request (a PostgreSQL backend is a new process: a few ms of every page); it is checked before
# a request reuses it, so a restarted server costs one retry, not an error. A DATABASE_URL with
# ?conn_max_age=N says otherwise; 0 is a connection per request.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# On PostgreSQL the pages' statements are prepared once per connection (ketacare.prepared):
# planning them on every request cost as much as running them. Behind a pooler that shares
# server connections between clients (PgBouncer in transaction mode), set 0.
PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
# On PostgreSQL a page view's audit row is written on a second connection to the same database
# while the page renders, and committed before the page is sent (audit.aside): a web process
# keeps two connections (per thread). Not with a connection per request (DB_CONN_MAX_AGE=0),
# where opening the second would cost more than it saves. AUDIT_VIEWS_ASIDE=0 writes the row
# on the page's own connection. The second connection is not checked before each request (it
# is reopened when found lost) and gives up waiting for a lock after 10 s.
AUDIT_VIEWS_ASIDE = env.bool("AUDIT_VIEWS_ASIDE", default=True)
if (AUDIT_VIEWS_ASIDE and DATABASES["default"]["ENGINE"].endswith("postgresql")
        and DATABASES["default"]["CONN_MAX_AGE"] != 0):
    _options = dict(DATABASES["default"].get("OPTIONS", {}))
    _options["options"] = f"{_options.get('options', '')} -c lock_timeout=10000".strip()
    DATABASES["audit"] = {**DATABASES["default"], "OPTIONS": _options,
                          "CONN_HEALTH_CHECKS": False, "TEST": {"MIRROR": "default"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out logins first
    "django.contrib.auth.backends.ModelBackend",
]
# Failed-login throttling: after 5 failures for one username from one address, that pair is
# locked out for 15 minutes (per pair, so an attacker cannot lock a clinician out everywhere).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "ketacare.proxy.client_ip"  # behind PROXY_COUNT proxies: the last hop
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
USE_I18N = False
USE_TZ = True
FORMAT_MODULE_PATH = ["ketacare.formats"]  # ISO dates everywhere
# The clinic's own time zone: dates on forms and "the day" of a rule are read in it.
TIME_ZONE = env.str("CLINIC_TIME_ZONE", default="America/New_York")
CLINIC_NAME = env.str("CLINIC_NAME", default="KetaCare demo clinic")
OTP_TOTP_ISSUER = CLINIC_NAME  # the name authenticator apps show
OTP_TOTP_THROTTLE_FACTOR = 1  # each wrong code doubles the wait before the next try

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Rendered fragments (ketacare.fragments) under keys made of data versions: never stale, so
# each process's own memory is enough. A shared cache (CACHE_URL=redis://...) would hold
# patient data outside the database: keep it as private as the database if you set one.
CACHES = {
    "default": env.cache_url(
        "CACHE_URL", default="locmemcache://ketacare?TIMEOUT=86400&MAX_ENTRIES=1000"
    )
}

# Celery: Redis when a broker is configured, otherwise tasks run inline (eager) so a fresh
# checkout needs no server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# No result backend: nothing reads task results (an export's state is in the database), and
# the Redis backend made delay() retry for 19 s when Redis was down before it gave up.
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = True
# When the broker is down, asking for an export fails within seconds (the export is then
# failed with "Run it again", exports.actions.enqueue), rather than holding the request.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1,
}
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
# A task's message is acknowledged when a worker process starts it, and a worker takes a
# message only when it has a free process. With late acknowledgement, a Redis restart while a
# task ran left an unacknowledged message on the lost connection, and kombu's attempt to
# restore it (Channel.close -> QoS.restore_unacked on a transport already released) raised
# AttributeError("'NoneType' object has no attribute 'hostname'"): the prefork worker finished
# its task, then exited (celery 5.7.0, kombu 5.7.0, the latest). Nothing is lost by acking
# early: a build that dies half way is failed by the sweep (EXPORT_STALE_MINUTES), and the admin
# is offered "Run it again" (tests/test_worker.py restarts a real Redis under a real worker).
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_BEAT_SCHEDULE = {
    "sweep-exports": {"task": "exports.tasks.sweep_exports", "schedule": 15 * 60},
    # Self-report invitations and alerts due or due again (selfreport.tasks): every minute.
    "send-self-reports": {"task": "selfreport.tasks.send_due", "schedule": 60},
}

# Email, through Django's email framework: EMAIL_URL as django-environ reads it, e.g.
# smtp+tls://user:password@smtp.example.org:587. The default prints each message to the
# console (development: the links it prints are real, single-use links).
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="KetaCare <ketacare@localhost>")
# The address patients and clinicians reach the app at: the links in emails start with it.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000" if DEBUG else "").rstrip("/")

# Patient self-report (SPEC §9): how long an emailed link works, the clinic's own words under
# the 988 line when a patient reports thoughts of self-harm, and how many requests one client
# address may make to the links per window (a cache counter; per process with the default
# cache, shared with CACHE_URL).
SELF_REPORT_LINK_HOURS = env.int("SELF_REPORT_LINK_HOURS", default=72)
SELF_REPORT_CRISIS_TEXT = env.str(
    "SELF_REPORT_CRISIS_TEXT",
    default="You can also call the clinic during opening hours and ask for the clinician on "
    "duty.",
)
SELF_REPORT_RATE_LIMIT = env.int("SELF_REPORT_RATE_LIMIT", default=30)
SELF_REPORT_RATE_WINDOW = env.int("SELF_REPORT_RATE_WINDOW", default=600)
# Minutes before each retry of an email that could not be sent; then it is reported failed.
SELF_REPORT_RETRY_MINUTES = env.list("SELF_REPORT_RETRY_MINUTES", cast=int, default=[1, 5, 30])

# Exports of course summaries: where their files are written, how long a finished export can
# be downloaded, and after how long without progress a running one is taken for dead.
EXPORT_ROOT = Path(env.str("EXPORT_ROOT", default=str(BASE_DIR / "var" / "exports")))
# Export files go through the "exports" storage (exports.files): EXPORT_ROOT on this machine by
# default; with EXPORT_S3_BUCKET, a private bucket on any S3-compatible store, so that web nodes
# and workers share nothing but PostgreSQL, Redis and the bucket. Credentials left unset are
# found by boto's usual chain (AWS_ACCESS_KEY_ID..., an instance role).
EXPORT_S3_BUCKET = env.str("EXPORT_S3_BUCKET", default="")
if EXPORT_S3_BUCKET:
    STORAGES["exports"] = s3_storage(
        bucket=EXPORT_S3_BUCKET,
        endpoint_url=env.str("EXPORT_S3_ENDPOINT_URL", default=""),
        region=env.str("EXPORT_S3_REGION", default=""),
        access_key=env.str("EXPORT_S3_ACCESS_KEY_ID", default=""),
        secret_key=env.str("EXPORT_S3_SECRET_ACCESS_KEY", default=""),
        prefix=env.str("EXPORT_S3_PREFIX", default="exports"),
    )
else:
    STORAGES["exports"] = {"BACKEND": "exports.files.AtomicFileSystemStorage"}
EXPORT_TTL_HOURS = env.int("EXPORT_TTL_HOURS", default=24)
EXPORT_STALE_MINUTES = env.int("EXPORT_STALE_MINUTES", default=30)

# Prometheus metrics at /metrics for whoever sends "Authorization: Bearer <METRICS_TOKEN>";
# unset, the path does not exist (ketacare.ops, ketacare.metrics).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Clinical rule parameters a clinic may change (SPEC §1 and §4 product defaults).
KETACARE_RULES = {
    "MADRS_REMISSION": env.int("MADRS_REMISSION", default=10),
    "PHQ9_REMISSION": env.int("PHQ9_REMISSION", default=4),
    "BP_WARNING": tuple(env.list("BP_WARNING", cast=int, default=[140, 90])),
    "BP_CRITICAL": tuple(env.list("BP_CRITICAL", cast=int, default=[180, 110])),
    # SPEC §7 "before a session is saved" (product defaults): the form asks for a confirmation
    # when another session is less than this many hours away, or the weight is older.
    "SESSION_GAP_HOURS": env.int("SESSION_GAP_HOURS", default=24),
    "WEIGHT_MAX_AGE_DAYS": env.int("WEIGHT_MAX_AGE_DAYS", default=90),
}

# Security: production defaults; development (DEBUG) relaxes only what plain HTTP needs.
SESSION_COOKIE_HTTPONLY = True
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# Automatic logoff (HIPAA 164.312(a)(2)(iii)): the session expires after this long without a
# request; pages warn two minutes before and renew it while the clinician is active. The age
# is an idle timeout, renewed at most once a minute by accounts.idle.IdleTimeoutMiddleware
# (not SESSION_SAVE_EVERY_REQUEST, a database write on every page).
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
SESSION_ENGINE = "accounts.idle"  # database sessions that end at the last renewal + the age
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline script or style anywhere: every script is a static file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],  # Bootstrap's form controls draw with data: SVGs
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO; lockouts (WARNING) are what operators need.
    # WeasyPrint narrates each rendering step at INFO.
    "loggers": {"axes": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}},
}
