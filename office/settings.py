"""Office settings: the only place that reads the environment.

Every value has a default that runs the embedded stack started by `make run`; production points
each service elsewhere through environment variables, never through code changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# --- small strict helpers: a bad value stops start-up with a message, never a silent default ---

def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def _env_number(name: str, default, parse, what: str, minimum):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {what}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    return value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    return _env_number(name, default, int, "an integer", minimum)


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    return _env_number(name, default, float, "a number", minimum)


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Parse postgresql://user:pass@host:port/db?host=/socket/dir into Django's DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgresql:// URL, got scheme {parsed.scheme!r}")
    query = parse_qs(parsed.query)
    host = query.pop("host", [parsed.hostname or ""])[0]
    options = {key: values[-1] for key, values in query.items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "office",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        "CONN_HEALTH_CHECKS": True,
    }


# --- where embedded services keep their data (make run) ---
DATA_DIR = Path(env_str("OFFICE_DATA_DIR", str(BASE_DIR / ".data"))).resolve()

# OFFICE_ENV=production turns on the settings a deployment behind a TLS proxy needs (HSTS, SSL
# redirect, the proxy's scheme header, secure cookies) and refuses DEBUG and a secret that is not
# from the environment; `manage.py check --deploy` is clean with it (tests/test_deploy_check.py).
OFFICE_ENV = env_str("OFFICE_ENV", "development")
if OFFICE_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"OFFICE_ENV must be development or production, not {OFFICE_ENV!r}")
PRODUCTION = OFFICE_ENV == "production"

DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when OFFICE_ENV=production")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("OFFICE_ENV=production needs SECRET_KEY from the environment (50+ random characters)")
if not SECRET_KEY:
    # The embedded runner writes a random key into the data directory; production must set one.
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        SECRET_KEY = key_file.read_text().strip()
    elif DEBUG or os.environ.get("OFFICE_ALLOW_EPHEMERAL_SECRET") == "1":
        SECRET_KEY = "ephemeral-" + os.urandom(24).hex()
    else:
        raise ImproperlyConfigured("SECRET_KEY is not set (make run creates one in the data directory)")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12, minimum=60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Health and metrics are probed over plain HTTP from inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# Behind the TLS-terminating proxy (deploy/): trust its X-Forwarded-Proto for "is this HTTPS".
if env_bool("OFFICE_BEHIND_TLS_PROXY", PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "django_celery_beat",
    "office",
    "rooms",
    "transcription",
    "assistant",
    "automation",
    "automation.workflows",
    "iot",
]

MIDDLEWARE = [
    "office.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "office.input_checks.ControlCharacterMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "office.observability.LoginRequiredEverywhereMiddleware",
]

ROOT_URLCONF = "office.urls"
ASGI_APPLICATION = "office.asgi.application"

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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"postgresql://postgres@/office?host={DATA_DIR / 'postgres'}")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6390/0")
MQTT_URL = env_str("MQTT_URL", "mqtt://127.0.0.1:1884")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 times reads out after 5 s by default, the same as channels-redis's blocking
            # receive: idle sockets would crash every 5 s. Reads may block up to the BZPOPMIN timeout.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
            "prefix": env_str("CHANNEL_LAYER_PREFIX", "office"),
            # Each group holds one channel per Daphne process (movement) or per socket (chat);
            # the database stays the record, so the layer only needs headroom, not durability.
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# Model calls are slow: they have their own queue (and worker) so indexing and automation never wait.
CELERY_TASK_ROUTES = {"assistant.meeting_refresh": {"queue": "assistant"}, "assistant.meeting_finalize": {"queue": "assistant"},
                      "assistant.run_job": {"queue": "assistant"}}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- single sign-on through an OpenID Connect provider (mozilla-django-oidc; docs/adr/0016) ---
# Off by default: nothing contacts a provider until OIDC_ENABLED is set with the client's credentials
# and the provider's endpoints. Password sign-in stays available either way (the embedded demo).
OIDC_ENABLED = env_bool("OIDC_ENABLED", False)
OFFICE_OIDC_PROVIDER_NAME = env_str("OFFICE_OIDC_PROVIDER_NAME", "single sign-on")  # "Sign in with <this>"
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile groups")
# Each endpoint may be given on its own; OIDC_OP_ISSUER fills in those left unset with
# django-oidc-provider's paths under it (<issuer>/authorize, /token, /userinfo, /jwks, /end-session).
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER", "").rstrip("/")


def _oidc_endpoint(name: str, path: str) -> str:
    return env_str(name, f"{OIDC_OP_ISSUER}/{path}" if OIDC_OP_ISSUER else "")


OIDC_OP_AUTHORIZATION_ENDPOINT = _oidc_endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT", "authorize")
OIDC_OP_TOKEN_ENDPOINT = _oidc_endpoint("OIDC_OP_TOKEN_ENDPOINT", "token")
OIDC_OP_USER_ENDPOINT = _oidc_endpoint("OIDC_OP_USER_ENDPOINT", "userinfo")
OIDC_OP_JWKS_ENDPOINT = _oidc_endpoint("OIDC_OP_JWKS_ENDPOINT", "jwks")
OIDC_OP_LOGOUT_ENDPOINT = _oidc_endpoint("OIDC_OP_LOGOUT_ENDPOINT", "end-session")  # empty: sign out here only
# The admin role follows one value of one claim on every sign-in (granted and revoked); with no group
# set, the provider's claims never touch the role and admins are made here.
OFFICE_OIDC_ADMIN_CLAIM = env_str("OFFICE_OIDC_ADMIN_CLAIM", "groups")
OFFICE_OIDC_ADMIN_GROUP = env_str("OFFICE_OIDC_ADMIN_GROUP", "")
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10, minimum=1)  # each call to the provider, so none hangs
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = True  # sign-out at the provider names the session by its ID token
OIDC_OP_LOGOUT_URL_METHOD = "office.oidc.provider_logout_url"
LOGIN_REDIRECT_URL_FAILURE = "/login/"
if OIDC_ENABLED:
    _needed = ["OIDC_RP_CLIENT_ID", "OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT",
               "OIDC_OP_USER_ENDPOINT", *(["OIDC_OP_JWKS_ENDPOINT"] if OIDC_RP_SIGN_ALGO[:2] in ("RS", "ES") else [])]
    _missing = [name for name in _needed if not globals()[name]]
    if _missing:
        raise ImproperlyConfigured(f"OIDC_ENABLED needs {', '.join(_missing)} (or OIDC_OP_ISSUER for the endpoints)")
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    *(["rooms.oidc.OidcMemberBackend"] if OIDC_ENABLED else []),
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
# Password sign-in: failures counted in Redis per username and address, and per address (office/signin.py).
OFFICE_SIGNIN_MAX_FAILURES = env_int("OFFICE_SIGNIN_MAX_FAILURES", 5, minimum=1)
OFFICE_SIGNIN_MAX_FAILURES_PER_ADDRESS = env_int("OFFICE_SIGNIN_MAX_FAILURES_PER_ADDRESS", 30, minimum=1)
OFFICE_SIGNIN_LOCK_SECONDS = env_int("OFFICE_SIGNIN_LOCK_SECONDS", 15 * 60, minimum=1)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = env_bool("WHITENOISE_AUTOREFRESH", DEBUG)  # make run: edits show without restart

REST_FRAMEWORK = {
    # The session first: unauthenticated requests keep answering 403 (no WWW-Authenticate challenge).
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication",
                                       "rooms.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["office.drf.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "office.schema.OfficeAutoSchema",
    "EXCEPTION_HANDLER": "office.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["office.drf.SharedUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("API_RATE_LIMIT", "1200/minute")},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
SPECTACULAR_SETTINGS = {
    "TITLE": "Office API",
    "DESCRIPTION": "Rooms, map, members and chat of a self-hosted virtual office.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets shared by several fields, or whose field names collide across apps, named once.
    "ENUM_NAME_OVERRIDES": {
        "RuleOpEnum": "iot.models.Rule.Op",
        "SensorKindEnum": "iot.models.Sensor.Kind",
        "RoomKindEnum": "rooms.models.Room.Kind",
        "TicketKindEnum": "automation.models.Ticket.Kind",
        "TicketSeverityEnum": "automation.models.Ticket.Severity",
        "RuleSeverityEnum": ["low", "medium", "high", "critical"],
        "AgendaItemKindEnum": "iot.serializers.AGENDA_ITEM_KINDS",
    },
}

# On Redis, so every web node counts the same API rate limits (a per-process cache would let N
# nodes allow N times the limit). Short timeouts: an outage fails the throttle open, never hangs.
CACHES = {"default": {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": env_str("CACHE_URL", REDIS_URL),
    "KEY_PREFIX": "office-cache",
    "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
}}

# --- real time ---
OFFICE_WS_MAX_FRAME_BYTES = env_int("OFFICE_WS_MAX_FRAME_BYTES", 64 * 1024, minimum=1024)
OFFICE_WS_RATE_PER_SECOND = env_int("OFFICE_WS_RATE_PER_SECOND", 20, minimum=1)
OFFICE_WS_RATE_BURST = env_int("OFFICE_WS_RATE_BURST", 40, minimum=1)
OFFICE_MOVE_TICK_MS = env_int("OFFICE_MOVE_TICK_MS", 50, minimum=10)
# While a process's event loop runs late, its tick stretches up to this (fewer, fuller frames).
OFFICE_MOVE_TICK_MAX_MS = env_int("OFFICE_MOVE_TICK_MAX_MS", 150, minimum=10)
OFFICE_AOI_CELL_TILES = env_int("OFFICE_AOI_CELL_TILES", 16, minimum=4)
OFFICE_CHAT_MAX_CHARS = env_int("OFFICE_CHAT_MAX_CHARS", 4000, minimum=1)
OFFICE_CHAT_PAGE_SIZE = env_int("OFFICE_CHAT_PAGE_SIZE", 50, minimum=1)
OFFICE_HUB_HEARTBEAT_SECONDS = env_int("OFFICE_HUB_HEARTBEAT_SECONDS", 5, minimum=1)
OFFICE_ACCESS_RECHECK_SECONDS = env_int("OFFICE_ACCESS_RECHECK_SECONDS", 10, minimum=1)
# WebRTC: no public STUN/TURN by default; list ICE servers as JSON for deployments.
OFFICE_ICE_SERVERS_JSON = env_str("OFFICE_ICE_SERVERS_JSON", "[]")
# The browsers' RTCPeerConnection iceTransportPolicy: "all", or "relay" to send media only through the
# TURN servers above (hides members' addresses from each other; `make prod-check` proves the relay path).
OFFICE_ICE_TRANSPORT_POLICY = env_str("OFFICE_ICE_TRANSPORT_POLICY", "all")
if OFFICE_ICE_TRANSPORT_POLICY not in ("all", "relay"):
    raise ImproperlyConfigured(f"OFFICE_ICE_TRANSPORT_POLICY must be all or relay, not {OFFICE_ICE_TRANSPORT_POLICY!r}")
# Addresses the server's WebRTC peers offer as host candidates: empty = the machine's own (aioice's
# choice); "127.0.0.1" keeps all media on loopback (tests, single-machine demos).
OFFICE_RTC_HOST_ADDRESSES = env_list("OFFICE_RTC_HOST_ADDRESSES", [])
# Meeting and private rooms: a browser mesh below OFFICE_SFU_FROM_PARTICIPANTS people, the SFU (Janus
# videoroom, docs/adr/0023) from there on. Empty OFFICE_SFU_URL: the Janus that `make run` embeds when
# installed, else no SFU and rooms stay a mesh. Pages join OFFICE_SFU_URL (the `sfu.join` frame); the
# admin API (tokens, kicks) is the server's alone, with OFFICE_SFU_ADMIN_SECRET, which is also the
# videoroom plugin's admin_key.
OFFICE_SFU_URL = env_str("OFFICE_SFU_URL", "")
OFFICE_SFU_ADMIN_URL = env_str("OFFICE_SFU_ADMIN_URL", "")
OFFICE_SFU_ADMIN_SECRET = env_str("OFFICE_SFU_ADMIN_SECRET", "")
OFFICE_SFU_FROM_PARTICIPANTS = env_int("OFFICE_SFU_FROM_PARTICIPANTS", 5, minimum=2)
# Metrics read from shared state when Prometheus scrapes, served by Celery beat only (one replica), so
# that nothing is counted once per web node (office/process_metrics.py).
OFFICE_SCRAPE_TIME_COLLECTORS = ["office.process_metrics.CeleryQueueCollector", "rooms.sfu_metrics.SfuCollector"]
if OFFICE_SFU_URL and not (OFFICE_SFU_ADMIN_URL and OFFICE_SFU_ADMIN_SECRET):
    raise ImproperlyConfigured("OFFICE_SFU_URL needs OFFICE_SFU_ADMIN_URL and OFFICE_SFU_ADMIN_SECRET")

# Speech to text: the bundled Whisper tiny.en on CPU here; on a GPU worker set device=cuda, float16.
OFFICE_WHISPER_MODEL_PATH = env_str("OFFICE_WHISPER_MODEL_PATH", "")  # empty: the packaged model
OFFICE_WHISPER_MODEL_ID = env_str("OFFICE_WHISPER_MODEL_ID", "whisper-tiny.en-ct2-int8")
OFFICE_WHISPER_DEVICE = env_str("OFFICE_WHISPER_DEVICE", "cpu")
OFFICE_WHISPER_COMPUTE_TYPE = env_str("OFFICE_WHISPER_COMPUTE_TYPE", "int8")
OFFICE_WHISPER_CPU_THREADS = env_int("OFFICE_WHISPER_CPU_THREADS", 2, minimum=1)
OFFICE_WHISPER_LANGUAGE = env_str("OFFICE_WHISPER_LANGUAGE", "en")  # empty: detected per utterance
# Decodes per model call when several speakers need one at once; 0: 1 on CPU (no gain there), 8 on CUDA.
OFFICE_WHISPER_BATCH_SIZE = env_int("OFFICE_WHISPER_BATCH_SIZE", 0, minimum=0)
# A worker renews its claim on a speaker's stream every second; another worker takes the stream over
# (from its last acknowledged audio) when the claim has not been renewed for this long.
OFFICE_TRANSCRIPTION_CLAIM_SECONDS = env_int("OFFICE_TRANSCRIPTION_CLAIM_SECONDS", 15, minimum=2)
# Behind live audio by more than this, a worker stops making partial captions until it catches up.
OFFICE_TRANSCRIPTION_PARTIALS_MAX_LAG_S = env_float("OFFICE_TRANSCRIPTION_PARTIALS_MAX_LAG_S", 1.0, minimum=0.0)
# ...and while it spent more than this share of the last 5 s decoding (other speakers' finals come first).
OFFICE_TRANSCRIPTION_PARTIALS_MAX_BUSY = env_float("OFFICE_TRANSCRIPTION_PARTIALS_MAX_BUSY", 0.5, minimum=0.0)

# --- assistant: language models ---
# One OpenAI-compatible chat-completions client for every model call. Empty base URLs mean the
# embedded llama.cpp servers that `make run` starts from the packaged GGUF models; in production
# point them at vLLM (see README). Two tiers: small/fast for routing and short answers, large for
# summaries and action items and for escalation when the small tier is unsure.
LLM_BASE_URL = env_str("LLM_BASE_URL", "")
LLM_MODEL = env_str("LLM_MODEL", "qwen2.5-coder-0.5b-instruct-q4")
LLM_LARGE_BASE_URL = env_str("LLM_LARGE_BASE_URL", "")
LLM_LARGE_MODEL = env_str("LLM_LARGE_MODEL", "qwen2.5-coder-1.5b-instruct-q4")
LLM_API_KEY = env_str("LLM_API_KEY", "")
# An endpoint outside our own infrastructure: text is redacted (e-mail, phone, card, unknown names)
# before it leaves. Local endpoints see raw text.
LLM_EXTERNAL = env_bool("LLM_EXTERNAL", False)
LLM_TIMEOUT_SECONDS = env_int("LLM_TIMEOUT_SECONDS", 120, minimum=1)
LLM_ESCALATE_BELOW = float(env_str("LLM_ESCALATE_BELOW", "0.5"))
LLM_BREAKER_FAILURES = env_int("LLM_BREAKER_FAILURES", 3, minimum=1)
LLM_BREAKER_RESET_SECONDS = env_int("LLM_BREAKER_RESET_SECONDS", 30, minimum=1)
LLM_CACHE_SIZE = env_int("LLM_CACHE_SIZE", 256, minimum=0)
OFFICE_LLM_SMALL_PORT = env_int("OFFICE_LLM_SMALL_PORT", 8931, minimum=1)
OFFICE_LLM_LARGE_PORT = env_int("OFFICE_LLM_LARGE_PORT", 8932, minimum=1)
OFFICE_LLM_THREADS = env_int("OFFICE_LLM_THREADS", 2, minimum=1)
# Where the packaged GGUF models are joined on first use (shared by test and bench stacks).
OFFICE_MODEL_DIR = Path(env_str("OFFICE_MODEL_DIR", str(DATA_DIR / "models"))).resolve()
OFFICE_SUMMARY_WINDOW_SECONDS = env_int("OFFICE_SUMMARY_WINDOW_SECONDS", 60, minimum=10)
OFFICE_SUMMARY_REFRESH_SECONDS = env_int("OFFICE_SUMMARY_REFRESH_SECONDS", 30, minimum=5)
# Action items: the turn ranker's version (assistant/rankers/) and who writes the items for the turns it
# picks: "rules" (deterministic; on real meetings about as good as the packaged 1.5B model, with better
# owners and no model time, see bench/meetings.py and ADR 0012) or "model" (the large tier, e.g. vLLM).
OFFICE_RANKER_VERSION = env_str("OFFICE_RANKER_VERSION", "v1")
OFFICE_ACTION_ITEM_WRITER = env_str("OFFICE_ACTION_ITEM_WRITER", "rules")
if OFFICE_ACTION_ITEM_WRITER not in ("rules", "model"):
    raise ImproperlyConfigured("OFFICE_ACTION_ITEM_WRITER must be rules or model")
OFFICE_UPLOAD_MAX_BYTES = env_int("OFFICE_UPLOAD_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
# The outcome dashboard's cost estimate (/outcomes/): JSON {"<endpoint or model id>": price per 1k tokens
# (prompt + completion)}, the endpoint looked up first. Calls with no price have an unknown cost, shown as such.
def _env_prices(name: str) -> dict[str, float]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        prices = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not JSON: {exc}") from exc
    if not isinstance(prices, dict) or not all(
            isinstance(key, str) and key and isinstance(value, int | float) and not isinstance(value, bool)
            and value >= 0 for key, value in prices.items()):
        raise ImproperlyConfigured(f'{name} must be a JSON object {{"endpoint or model id": price >= 0, ...}}')
    return {key: float(value) for key, value in prices.items()}


OFFICE_MODEL_PRICE_PER_1K_TOKENS = _env_prices("OFFICE_MODEL_PRICE_PER_1K_TOKENS")
# Scanned PDF pages read by OCR per document (~0.6 s a page on 2 cores); later scanned pages stay unsearchable.
OFFICE_OCR_MAX_PAGES = env_int("OFFICE_OCR_MAX_PAGES", 50, minimum=0)

# --- automation (work kernel, workflows, connectors) ---
# Workflows: a step attempt holds its claim for the lease, then counts as lost (well below the
# broker's visibility timeout); the tick relays the outbox and re-enqueues work stalled this long.
OFFICE_WORKFLOW_TICK_SECONDS = env_int("OFFICE_WORKFLOW_TICK_SECONDS", 2, minimum=1)
OFFICE_WORKFLOW_STEP_LEASE_SECONDS = env_int("OFFICE_WORKFLOW_STEP_LEASE_SECONDS", 300, minimum=1)
OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS = env_int("OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS", 30, minimum=1)
OFFICE_WORKFLOW_BREAKER_FAILURES = env_int("OFFICE_WORKFLOW_BREAKER_FAILURES", 5, minimum=1)
OFFICE_WORKFLOW_BREAKER_RESET_SECONDS = env_int("OFFICE_WORKFLOW_BREAKER_RESET_SECONDS", 60, minimum=1)
OFFICE_WORKFLOW_BREAKER_PREFIX = env_str("OFFICE_WORKFLOW_BREAKER_PREFIX", "office:breaker")
OFFICE_WORKFLOW_MODULES = env_list("OFFICE_WORKFLOW_MODULES", [])  # extra modules that register workflows
OFFICE_WORKFLOW_ORG_EMAIL_DOMAINS = env_list("OFFICE_WORKFLOW_ORG_EMAIL_DOMAINS", [])
OFFICE_WEBHOOK_TIMEOUT_SECONDS = env_int("OFFICE_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# E-mail: written to files under DATA_DIR/mail unless a real backend is configured (tests: locmem).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_FROM = env_str("EMAIL_FROM", "office@localhost")
# Reminders: OFFICE_TASK_REMINDER_LEAD_DAYS before the due date at OFFICE_TASK_REMINDER_HOUR (UTC);
# a task due sooner than that is reminded OFFICE_TASK_REMINDER_SOON_MINUTES from now.
OFFICE_TASK_REMINDER_LEAD_DAYS = env_int("OFFICE_TASK_REMINDER_LEAD_DAYS", 1, minimum=0)
OFFICE_TASK_REMINDER_HOUR = env_int("OFFICE_TASK_REMINDER_HOUR", 9, minimum=0)
OFFICE_TASK_REMINDER_SOON_MINUTES = env_int("OFFICE_TASK_REMINDER_SOON_MINUTES", 30, minimum=0)
OFFICE_TASK_REMINDER_CHECK_SECONDS = env_int("OFFICE_TASK_REMINDER_CHECK_SECONDS", 60, minimum=5)
# Daily digest: built and sent at OFFICE_DIGEST_HOUR (UTC); "due" looks OFFICE_DIGEST_DUE_DAYS ahead.
OFFICE_DIGEST_HOUR = env_int("OFFICE_DIGEST_HOUR", 7, minimum=0)
OFFICE_DIGEST_DUE_DAYS = env_int("OFFICE_DIGEST_DUE_DAYS", 3, minimum=0)
OFFICE_DIGEST_ROOM_LOOKBACK_DAYS = env_int("OFFICE_DIGEST_ROOM_LOOKBACK_DAYS", 30, minimum=1)
# Free/busy: working hours (UTC) for owner suggestions, how far ahead feeds are expanded, how often
# http(s) feeds (set up by an admin) are fetched, and the fetch limits.
OFFICE_CALENDAR_WORK_START_HOUR = env_int("OFFICE_CALENDAR_WORK_START_HOUR", 9, minimum=0)
OFFICE_CALENDAR_WORK_END_HOUR = env_int("OFFICE_CALENDAR_WORK_END_HOUR", 17, minimum=1)
OFFICE_CALENDAR_WORK_DAYS = [int(d) for d in env_list("OFFICE_CALENDAR_WORK_DAYS", ["0", "1", "2", "3", "4"])]
OFFICE_CALENDAR_HORIZON_DAYS = env_int("OFFICE_CALENDAR_HORIZON_DAYS", 60, minimum=1)
OFFICE_CALENDAR_IMPORT_MINUTES = env_int("OFFICE_CALENDAR_IMPORT_MINUTES", 30, minimum=1)
OFFICE_CALENDAR_FETCH_TIMEOUT_SECONDS = env_int("OFFICE_CALENDAR_FETCH_TIMEOUT_SECONDS", 10, minimum=1)
OFFICE_CALENDAR_MAX_BYTES = env_int("OFFICE_CALENDAR_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)

# Connector checks (docs/adr/0017): every outbound connector is sent a marked synthetic request when
# its configuration is saved and every OFFICE_CONNECTOR_CHECK_INTERVAL_SECONDS (beat); the newest
# OFFICE_CONNECTOR_CHECK_HISTORY results per target are kept. Model and mail-server checks wait at
# most OFFICE_CONNECTOR_CHECK_TIMEOUT_SECONDS (webhooks and feeds use their own timeouts).
OFFICE_CONNECTOR_CHECK_INTERVAL_SECONDS = env_int("OFFICE_CONNECTOR_CHECK_INTERVAL_SECONDS", 3600, minimum=60)
OFFICE_CONNECTOR_CHECK_HISTORY = env_int("OFFICE_CONNECTOR_CHECK_HISTORY", 48, minimum=1)
OFFICE_CONNECTOR_CHECK_TIMEOUT_SECONDS = env_int("OFFICE_CONNECTOR_CHECK_TIMEOUT_SECONDS", 10, minimum=1)

# --- iot (sensors, rules) ---
# Sensors publish JSON on <prefix>/<device_id> (QoS 1); the ingester subscribes to <prefix>/+ with
# a persistent session so readings sent while it restarts are delivered afterwards.
OFFICE_IOT_TOPIC_PREFIX = env_str("OFFICE_IOT_TOPIC_PREFIX", "office/sensors")
OFFICE_IOT_MQTT_CLIENT_ID = env_str("OFFICE_IOT_MQTT_CLIENT_ID", "office-iot-ingester")
OFFICE_IOT_MQTT_USERNAME = env_str("OFFICE_IOT_MQTT_USERNAME", "")  # the ingester's broker login (make run generates one)
OFFICE_IOT_MQTT_PASSWORD = env_str("OFFICE_IOT_MQTT_PASSWORD", "")
OFFICE_IOT_RECONNECT_MAX_SECONDS = env_int("OFFICE_IOT_RECONNECT_MAX_SECONDS", 30, minimum=1)
OFFICE_IOT_MAX_PAYLOAD_BYTES = env_int("OFFICE_IOT_MAX_PAYLOAD_BYTES", 16 * 1024, minimum=256)
# Signed webhooks: older than this (either way) are refused as stale; signatures are remembered this long.
OFFICE_IOT_WEBHOOK_TOLERANCE_SECONDS = env_int("OFFICE_IOT_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=5)
# Device HMAC secrets are encrypted at rest with this key; empty derives one from SECRET_KEY.
OFFICE_IOT_SECRETS_KEY = env_str("OFFICE_IOT_SECRETS_KEY", "")
# How often Celery beat fires rules whose timer ran out.
OFFICE_IOT_RULE_TICK_SECONDS = env_int("OFFICE_IOT_RULE_TICK_SECONDS", 5, minimum=1)
# A booked meeting's draft agenda is posted to its room's chat this many minutes before it starts.
OFFICE_AGENDA_LEAD_MINUTES = env_int("OFFICE_AGENDA_LEAD_MINUTES", 15, minimum=1)

METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Processes other than the web (workers, beat, transcriber, ingester) serve Prometheus metrics on their
# own port when this is set (office/process_metrics.py; the port of each is in office/processes.py).
OFFICE_METRICS_PORT = env_int("OFFICE_METRICS_PORT", 0, minimum=0)
OFFICE_METRICS_HOST = env_str("OFFICE_METRICS_HOST", "127.0.0.1")
# Celery's forked pool children write their metrics here (read by prometheus_client itself too).
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "json")
# --- retention of personal data (rooms.selectors.retention_days) ---
# Site defaults in days, used where neither the room nor its map sets one; empty keeps forever. The
# daily sweep (rooms.sweep_retention, office/celery.py) deletes what is older, with the knowledge made from it.


def _env_days(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in {"", "forever", "none"}:
        return None
    return env_int(name, 0, minimum=0)


OFFICE_RETENTION_DEFAULT_DAYS = {
    "transcripts": _env_days("OFFICE_RETENTION_TRANSCRIPTS_DAYS", None),
    "chat": _env_days("OFFICE_RETENTION_CHAT_DAYS", None),
    "documents": _env_days("OFFICE_RETENTION_DOCUMENTS_DAYS", None),
    # audio waits in Redis only until it is transcribed; what a crash left behind goes after a day
    "audio": _env_days("OFFICE_RETENTION_AUDIO_DAYS", 1),
    "model_calls": _env_days("OFFICE_RETENTION_MODEL_CALLS_DAYS", 90),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "office.logformat.RequestIdLogFilter"}},
    "formatters": {
        "json": {"()": "office.logformat.JsonLogFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "amqtt": {"level": "WARNING"},
        "faster_whisper": {"level": "WARNING"},
    },
}
