"""SpecLoop settings: one file, driven by the environment.

With no environment at all SpecLoop runs embedded: a SQLite file under ``var/``, Celery tasks run
in-process, DEBUG on. A deployment sets DATABASE_URL, REDIS_URL, SECRET_KEY and DEBUG=0.
Every setting read here is listed in the README's configuration table.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SPECLOOP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off SpecLoop needs a secret key from the environment "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    # Development only: a random key kept in var/ so sessions survive restarts. Never a fixed default.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "dev-secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "specloop",
    "taxonomy",
    "labeling",
    "rewardmodels",
    "training",
    "safety",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "specloop.middleware.ApiErrorMiddleware",  # every error under /api/ is JSON; outside CommonMiddleware's slash redirect
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "specloop.errors.ApplicationErrorMiddleware",
    "specloop.middleware.TextInputMiddleware",  # NUL / lone surrogates in paths, query strings, forms: 400
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout answer
]

ROOT_URLCONF = "specloop.urls"
WSGI_APPLICATION = "specloop.wsgi.application"
ASGI_APPLICATION = "specloop.asgi.application"

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
                "specloop.roles.roles_context",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
            # Off by default: a check costs a query on every request; a connection dropped by a database
            # restart fails one request and is then replaced.
            conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # SQLite for a small team on one machine. WAL lets readers run beside the one writer; IMMEDIATE
    # takes the write lock when a transaction begins, so two writers queue on the busy timeout instead
    # of one failing with "database is locked" when its read lock cannot be upgraded.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "specloop.sqlite3",
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
            # Tests use a file too: an in-memory shared-cache database locks whole tables between threads.
            "TEST": {"NAME": str(VAR_DIR / "test-specloop.sqlite3")},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

CSRF_FAILURE_VIEW = "specloop.views.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login lockout (django-axes): LOGIN_FAILURE_LIMIT wrong passwords for one username from one address lock
# that pair out for LOGIN_COOLOFF_MINUTES (each attempt while locked starts the wait again); the right
# password is refused meanwhile. Attempts are rows in the database (every process sees them; the admin
# lists them; `manage.py axes_reset` unlocks).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "specloop.throttling.login_lockout_response"
AXES_CLIENT_IP_CALLABLE = "specloop.throttling.client_ip"  # the API throttles' rule (NUM_PROXIES)
AXES_VERBOSE = False  # no start-up banner in every process and command

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve files straight from the finders in development so `runserver` needs no collectstatic.
WHITENOISE_USE_FINDERS = DEBUG

# Production hardening: on whenever DEBUG is off, each switchable for a deployment behind a proxy.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (django-csp) on every response: scripts and styles only from our own static
# files (no inline code, no eval; htmx is configured for that in base.html), images also as data: URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}


def _rate(name: str, default: str) -> str | None:
    raw = os.environ.get(name, default).strip()
    return None if raw.lower() in {"", "off", "none"} else raw


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "specloop.authentication.TokenWithRolesAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Size, nesting and text checks on every body (specloop/parsers.py). JSON only, as the schema states;
    # item and pair files and YAML specs have their own parsers on their views. Another type is a 415.
    "DEFAULT_PARSER_CLASSES": ["specloop.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "specloop.schema.AutoSchema",  # lists the JSON error answers of each operation
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "specloop.errors.api_exception_handler",
    # `?format=yaml` selects the spec export format, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
    # Fixed-window counts in the "throttle" cache (specloop/throttling.py); "off" turns a scope off.
    "DEFAULT_THROTTLE_CLASSES": ["specloop.throttling.AnonThrottle", "specloop.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _rate("API_THROTTLE_ANON", "120/min"),
        "user": _rate("API_THROTTLE_USER", "2000/min"),  # the rater loop runs ~1200/min per rater at full speed
        "token_failure": _rate("API_THROTTLE_TOKEN_FAILURES", "20/min"),  # wrong tokens per client address
    },
    # Proxies in front of the app whose X-Forwarded-For is trusted; 0: the client address is REMOTE_ADDR.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SpecLoop API",
    "DESCRIPTION": "Safety specs, pairwise labeling, agreement, exports and training jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two choice sets share the field name "kind": each gets its own enum name.
    "ENUM_NAME_OVERRIDES": {"TrainingJobKindEnum": "training.models.TrainingJob.KIND_CHOICES",
                            "ImportJobKindEnum": "labeling.models.ImportJob.KIND_CHOICES"},
}

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Agreement results per campaign and judgment state, per process (values are copied in and out).
    "agreement": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "agreement",
                  "OPTIONS": {"MAX_ENTRIES": 32}},
    # API throttle counts: shared by every process through Redis when there is one, else per process.
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"],
         "KEY_PREFIX": "throttle"}
        if os.environ.get("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
    ),
}

# Celery: a real broker when REDIS_URL is set, otherwise tasks run in-process (embedded mode).
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "training.tasks.training_job_run_task": {"queue": "gpu"},
    "training.tasks.training_jobs_reap_task": {"queue": "default"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message whose worker died is redelivered after this long (seconds); the job itself is failed sooner
# by the heartbeat check, so a redelivery finds it finished and does nothing.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}

# Training jobs. A running job's worker writes a heartbeat every TRAINING_HEARTBEAT_SECONDS; a job
# whose last heartbeat is older than TRAINING_HEARTBEAT_TIMEOUT_SECONDS is failed by the periodic check
# (celery beat, every TRAINING_REAP_SECONDS) and whenever jobs are read.
TRAINING_HEARTBEAT_SECONDS = float(os.environ.get("TRAINING_HEARTBEAT_SECONDS", "10"))
TRAINING_HEARTBEAT_TIMEOUT_SECONDS = float(os.environ.get("TRAINING_HEARTBEAT_TIMEOUT_SECONDS", "120"))
TRAINING_REAP_SECONDS = float(os.environ.get("TRAINING_REAP_SECONDS", "60"))
# The same check hands a job queued this long without a worker claiming it to the queue again (or fails
# it when it was never handed over).
TRAINING_QUEUED_TIMEOUT_SECONDS = float(os.environ.get("TRAINING_QUEUED_TIMEOUT_SECONDS", "600"))
# Without a broker, jobs run in-process: in a background thread (pages stay live) or, with "sync",
# inside the request that launched them (management commands, tests).
TRAINING_INPROCESS = os.environ.get("TRAINING_INPROCESS", "thread")
# An import file larger than this (bytes) is imported by a job off the request thread (202 + a progress URL);
# a smaller one inside the request. Jobs run like training jobs: on a worker, or in-process as above.
IMPORT_ASYNC_BYTES = int(os.environ.get("IMPORT_ASYNC_BYTES", str(8 * 1024 * 1024)))
# Model backbones fetched once (offline afterwards): see `make models`.
# Where the score and guard endpoints run models: auto picks CUDA when the web process has one.
SCORING_DEVICE = os.environ.get("SCORING_DEVICE", "cpu")
MODELS_DIR = Path(os.environ.get("SPECLOOP_MODELS_DIR", VAR_DIR / "models"))
CELERY_BEAT_SCHEDULE = {
    "training-jobs-reap": {"task": "training.tasks.training_jobs_reap_task", "schedule": TRAINING_REAP_SECONDS},
    "import-jobs-reap": {"task": "labeling.tasks.import_jobs_reap_task", "schedule": TRAINING_REAP_SECONDS},
    "prompt-set-imports-reap": {"task": "safety.tasks.prompt_set_imports_reap_task", "schedule": TRAINING_REAP_SECONDS},
}
# A running import that wrote no progress for this long stopped (its worker or the server restarted): it
# reads as failed at once and the periodic check records it.
IMPORT_STALL_SECONDS = float(os.environ.get("IMPORT_STALL_SECONDS", "600"))

# Abandoned assignments are swept back into the pool at most this often (seconds, per campaign and process).
LABELING_EXPIRY_SWEEP_SECONDS = int(os.environ.get("LABELING_EXPIRY_SWEEP_SECONDS", "5"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # django-axes logs every login at INFO; its warnings (failed attempts, lockouts) are the ones to keep.
    "loggers": {"axes": {"level": "WARNING"}},
}
