"""Settings for every environment, read from the process environment.

One module on purpose: each value documents its variable, and the README lists them all.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# The development key is refused outside `make dev` / `make test` when DEBUG is off (config/checks.py,
# minds.E001); MINDS_DEV_RUN=1 says this is such a run (scripts/dev.py and scripts/run_tests.py set it).
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
MINDS_DEV_RUN = env_bool("MINDS_DEV_RUN", False)
SECRET_KEY = env("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Security headers (django.middleware.security.SecurityMiddleware on every response, errors and 404s included).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env("SECURE_REFERRER_POLICY", "same-origin")
X_FRAME_OPTIONS = "DENY"  # the public page opts out and uses CSP frame-ancestors (public/views.py)
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER names the header it sets (e.g. X-Forwarded-Proto; the
# proxy must overwrite it) and a request is secure when it says "https". HSTS is sent on secure requests only,
# and only when SECURE_HSTS_SECONDS > 0: off by default, since plain-HTTP local runs must not pin browsers to TLS.
_proxy_ssl_header = env("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain HTTP inside the network
# Session and CSRF cookies (the admin's) travel over TLS only once a TLS proxy is declared.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", bool(_proxy_ssl_header))
# The admin's URL prefix: moving it off the well-known /admin/ keeps scanners from finding its login page.
ADMIN_PATH = env("ADMIN_PATH", "admin/").strip("/") + "/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "apikeys",
    "minds",
    "knowledge",
    "conversations",
    "tools",
    "insights",
    "teams",
    "compat",
    "public",
]

MIDDLEWARE = [
    "config.api.middleware.HeadWithoutBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.api.middleware.ApiRequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.audit.AdminActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False
CSRF_FAILURE_VIEW = "config.api.middleware.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The embedded PostgreSQL (started by `make dev` / `make test`) listens here unless DATABASE_URL is set.
EMBEDDED_PG_PORT = env_int("EMBEDDED_PG_PORT", 54329)
DATABASE_URL = env("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/minds")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"]["TEST"] = {"NAME": env("MINDS_TEST_DB", "test_minds")}
# A database host that accepts but never answers (a partition, a hung server) fails the request within seconds as a
# 503, rather than holding it for the TCP timeout.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env_int("DB_CONNECT_TIMEOUT_SECONDS", 5)
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "minds"),
    }
}

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / ".data" / "media")))
MEDIA_URL = "media/"
# Local disk by default; S3-compatible storage when STORAGE_BACKEND=s3 (needs django-storages[s3]).
if env("STORAGE_BACKEND", "local") == "s3":
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": env("S3_BUCKET"),
                "endpoint_url": env("S3_ENDPOINT_URL") or None,
                "access_key": env("S3_ACCESS_KEY_ID"),
                "secret_key": env("S3_SECRET_ACCESS_KEY"),
                "region_name": env("S3_REGION") or None,
            },
        },
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
else:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }

# Request bodies: JSON bodies are small; uploads stream to temporary files past 2.5 MB, never into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_JSON_BODY_BYTES", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_TEMP_DIR = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apikeys.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apikeys.permissions.HasRequiredScopes"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.CheckedJSONParser"],
    "EXCEPTION_HANDLER": "config.api.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Minds API",
    "DESCRIPTION": "Knowledge-grounded AI personas: minds, knowledge sources, search, chat.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v[12]",
    # 3.1: schemas are plain JSON Schema (null as a type), so tests validate real responses against them.
    "OAS_VERSION": "3.1.0",
    "ENUM_NAME_OVERRIDES": {
        "SourceStatusEnum": "knowledge.models.Source.Status",
        "SourceTypeEnum": "knowledge.models.Source.Type",
        "SuccessStatusEnum": ["success"],
        "SearchModeEnum": ["vector", "hybrid", "smart"],
        "ChatbotSourceTypeEnum": ["text", "url", "file"],
        "CollectionPrivacyEnum": "knowledge.models.Collection.Privacy",
        "AgentPrivacyEnum": ["public", "private"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.schema.document_infrastructure_errors",
    ],
    # Served from the package, not a CDN: deployments may have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Plan limits (defaults; each workspace may override).
MINDS_LIMIT = env_int("MINDS_LIMIT", 10)
SOURCES_LIMIT = env_int("SOURCES_LIMIT", 500)
SOURCE_LIMIT_PER_MIND = env_int("SOURCE_LIMIT_PER_MIND", 100)
API_KEYS_LIMIT = env_int("API_KEYS_LIMIT", 10)

# Rate limits, per API key, shared across processes through Redis.
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 100)
SEARCH_RATE_LIMIT_PER_MINUTE = env_int("SEARCH_RATE_LIMIT_PER_MINUTE", 30)
# Requests with a missing or invalid key allowed per client address per minute; past it they get 429 (a valid key
# from the same address still works: config/api/throttling.py).
AUTH_FAILURES_PER_MINUTE = env_int("AUTH_FAILURES_PER_MINUTE", 30)
# Behind a trusted proxy that appends the client's address to X-Forwarded-For: count limits by that address
# instead of the proxy's (config/ratelimit.py client_address). Off by default: without a proxy the header is forged.
USE_X_FORWARDED_FOR = env_bool("USE_X_FORWARDED_FOR", False)

# Uploads.
MAX_DOCUMENT_BYTES = env_int("MAX_DOCUMENT_BYTES", 50 * 1024 * 1024)
MAX_AUDIO_BYTES = env_int("MAX_AUDIO_BYTES", 500 * 1024 * 1024)
# The bytes of uploads a workspace may store (the sum of its files' sizes), and how long an upload no source uses
# is kept (the beat task knowledge.uploads_expire_unattached deletes it and its file).
STORAGE_LIMIT_BYTES = env_int("STORAGE_LIMIT_BYTES", 5 * 1024 * 1024 * 1024)
UPLOAD_UNATTACHED_TTL_HOURS = env_int("UPLOAD_UNATTACHED_TTL_HOURS", 24)

# Celery.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Time limits, so a hung parser, transcriber or receiver never holds a worker forever. At the soft limit the task
# gets SoftTimeLimitExceeded (a source then ends `failed` with `processing_timeout`); at the hard limit the pool
# kills the child, for code stuck where the exception cannot reach it (the sweeper then takes the source over).
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90)
# The two ingestion stages override them (knowledge/tasks.py; hard limit 60 s later): a 500-page PDF takes about
# 2 minutes, an hour of audio about 5. The limit stays under SOURCE_PROCESSING_DEADLINE_SECONDS, so the sweeper
# never takes over a source whose run is still within its limit. The limits travel with the queued task, so the
# process that queues it (web or worker) decides: give both the same environment.
SOURCE_STAGE_TIME_LIMIT_SECONDS = env_int("SOURCE_STAGE_TIME_LIMIT_SECONDS", 1500)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task not acknowledged after this many seconds is delivered again. Tasks are acknowledged when they end
    # (acks_late), so it stays above every hard time limit: a task still running is never handed to a second worker.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # A Redis that accepts and never answers (hung, half-open connection) fails a publish (`.delay()` in a request)
    # within seconds instead of holding it forever; the consumer's BRPOP answers every second, so it is unaffected.
    "socket_connect_timeout": 5,
    "socket_timeout": 10,
}
# Redis restarted or unreachable: the worker reconnects by itself, at startup as later, for as long as it takes
# (Celery gives up after 100 tries by default, some 45 minutes). A running stage keeps running meanwhile: its
# source's claim, not the message, says who owns the work (knowledge/source_states.py). Messages queued in a
# Redis that restarted empty are lost; the sweeper queues their sources again (knowledge.sources_sweep_stuck).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_ROUTES = {
    "knowledge.source_process": {"queue": "ingestion"},
    "knowledge.source_transcribe": {"queue": "transcription"},
    "knowledge.webhook_deliver": {"queue": "webhooks"},
}
CELERY_BEAT_SCHEDULE = {
    "knowledge-sweep-stuck-sources": {"task": "knowledge.sources_sweep_stuck", "schedule": 60.0},
    "knowledge-expire-uploads": {"task": "knowledge.uploads_expire_unattached", "schedule": 3600.0},
    "knowledge-refresh-due-sources": {"task": "knowledge.sources_refresh_due", "schedule": 300.0},
}
CELERY_WORKER_QUEUES = env("CELERY_QUEUES", "default,ingestion,transcription,webhooks")

# Ingestion.
EMBEDDING_BACKEND = env("EMBEDDING_BACKEND", "local")  # local | openai
# How the local model runs: onnx-int8 (its int8 ONNX export, ~3x faster on CPU) | torch (sentence-transformers).
EMBEDDING_RUNTIME = env("EMBEDDING_RUNTIME", "onnx-int8")
EMBEDDING_DIMENSIONS = 384
OPENAI_EMBEDDING_MODEL = env("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
CHUNK_TOKENS = env_int("CHUNK_TOKENS", 400)
CHUNK_OVERLAP_TOKENS = env_int("CHUNK_OVERLAP_TOKENS", 60)
WHISPER_MODEL = env("WHISPER_MODEL", "")  # empty: the packaged tiny.en
# OCR of scanned PDF pages (knowledge/extractors/ocr.py), with Debian's Tesseract, page by page in the ingestion
# stage. A page gets OCR_PAGE_TIME_LIMIT_SECONDS; a document's OCR stops taking pages after OCR_TOTAL_TIME_LIMIT_SECONDS,
# which stays under SOURCE_STAGE_TIME_LIMIT_SECONDS so embedding the pages read still fits in the stage.
OCR_ENABLED = env_bool("OCR_ENABLED", True)
OCR_LANGUAGES = env("OCR_LANGUAGES", "eng")  # Tesseract language packs joined by "+", e.g. eng+deu
OCR_DPI = env_int("OCR_DPI", 300)
OCR_PAGE_TIME_LIMIT_SECONDS = env_float("OCR_PAGE_TIME_LIMIT_SECONDS", 60)
OCR_TOTAL_TIME_LIMIT_SECONDS = env_float("OCR_TOTAL_TIME_LIMIT_SECONDS", 900)
OCR_TESSERACT_CMD = env("OCR_TESSERACT_CMD", "tesseract")
SOURCE_PROCESSING_DEADLINE_SECONDS = env_int("SOURCE_PROCESSING_DEADLINE_SECONDS", 1800)
SOURCE_MAX_ATTEMPTS = env_int("SOURCE_MAX_ATTEMPTS", 3)
# A claim's lease: the process working on a source renews it every SOURCE_HEARTBEAT_SECONDS; a claimant silent
# for SOURCE_LEASE_SECONDS is taken for dead, and its source is taken over (knowledge/source_states.py). The
# heartbeat stays well under the lease, so a slow database or a missed renewal never lets a live claim lapse.
SOURCE_LEASE_SECONDS = env_float("SOURCE_LEASE_SECONDS", 60)
SOURCE_HEARTBEAT_SECONDS = env_float("SOURCE_HEARTBEAT_SECONDS", 15)
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 50 * 1024 * 1024)
FETCH_TIMEOUT_SECONDS = env_float("FETCH_TIMEOUT_SECONDS", 20)
# A podcast feed fetched again adds at most this many new episodes as sources (knowledge/feed_refresh.py).
FEED_NEW_EPISODES_MAX = env_int("FEED_NEW_EPISODES_MAX", 10)
# A links(<url>) page of a collection adds at most this many of the pages it links to (knowledge/links.py).
COLLECTION_LINKS_MAX = env_int("COLLECTION_LINKS_MAX", 50)
# Webhooks: attempts in all and the first retry delay (doubled after each failure: 10 s, 20 s, 40 s…).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6)
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 10)
# One attempt's whole exchange, the receiver's answer included (a receiver that hangs or trickles fails at it).
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10)
# Tests only: lets the SSRF-safe client reach loopback test servers. Off by default.
SSRF_ALLOW_LOOPBACK = env_bool("SSRF_ALLOW_LOOPBACK", False)

# LLM (any OpenAI-compatible endpoint). Without OPENAI_API_KEY chat answers extractively.
OPENAI_API_KEY = env("OPENAI_API_KEY")
OPENAI_BASE_URL = env("OPENAI_BASE_URL") or None
LLM_MODEL = env("LLM_MODEL", "gpt-4o-mini")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 60)
# A stream silent this long mid-answer is given up: the client gets an error event, the partial answer is kept.
LLM_STREAM_STALL_SECONDS = env_float("LLM_STREAM_STALL_SECONDS", 60)

# Tools in chat (tools/, conversations/tool_loop.py): a turn makes at most this many tool calls within this budget;
# each call has its own timeout. MCP sessions (one per conversation and server) close after the idle time.
TOOL_CALLS_PER_TURN = env_int("TOOL_CALLS_PER_TURN", 8)
TOOL_TURN_BUDGET_SECONDS = env_float("TOOL_TURN_BUDGET_SECONDS", 30)
TOOL_CALL_TIMEOUT_SECONDS = env_float("TOOL_CALL_TIMEOUT_SECONDS", 10)
TOOL_RESULT_MAX_CHARS = env_int("TOOL_RESULT_MAX_CHARS", 8000)
MCP_SESSION_IDLE_SECONDS = env_float("MCP_SESSION_IDLE_SECONDS", 300)
# The dynamic context endpoint's answer may fill at most this share of the model's context (LLM_CONTEXT_TOKENS).
LLM_CONTEXT_TOKENS = env_int("LLM_CONTEXT_TOKENS", 128000)
DYNAMIC_CONTEXT_SHARE = env_float("DYNAMIC_CONTEXT_SHARE", 0.15)
TTS_MODEL = env("TTS_MODEL", "tts-1")
TTS_ENABLED = env_bool("TTS_ENABLED", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "format": "time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
