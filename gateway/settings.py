"""Django settings, derived from the product's ``GPUBROKER_*`` settings.

Embedded mode uses SQLite in the data directory; ``GPUBROKER_DATABASE_URL`` switches to
PostgreSQL, through a connection pool of ``GPUBROKER_DATABASE_POOL_SIZE`` connections per
instance: Django gives a connection back to the pool at the end of each request (and
``gateway.db`` after each piece of background work), so connections never outlive the work that
took them. Middleware is kept to what the API needs: every layer costs on each request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from gpubroker.core.errors import ConfigurationError
from gpubroker.core.settings import load_settings

GPUBROKER = load_settings()


def database_config(url: str | None) -> dict[str, Any]:
    if not url:
        GPUBROKER.data_dir.mkdir(parents=True, exist_ok=True)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(GPUBROKER.data_dir / "gpubroker.sqlite3")}
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigurationError(f"GPUBROKER_DATABASE_URL: unsupported scheme {parts.scheme!r} (use postgresql://)")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 0,  # the pool keeps connections; Django returns them after each request
        "CONN_HEALTH_CHECKS": True,  # the pool checks a connection before handing it out
        "OPTIONS": {
            "application_name": "gpubroker-gateway",
            # A statement or a lock wait is bounded, so no request holds a pooled connection for long.
            "options": "-c statement_timeout=10000 -c lock_timeout=3000",
            "connect_timeout": max(1, round(GPUBROKER.database_timeout_s)),
            "pool": {
                "min_size": 1,
                "max_size": GPUBROKER.database_pool_size,
                "timeout": GPUBROKER.database_timeout_s,
                "max_idle": 60,
                "max_lifetime": 1800,
                # Give up reconnecting in the background after 2 s: the next request then starts a
                # fresh attempt at once, instead of waiting out a backoff that doubles to seconds,
                # so the gateway uses PostgreSQL again within moments of its return.
                "reconnect_timeout": 2.0,
            },
        },
    }


SECRET_KEY = GPUBROKER.signing_key
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["gpubroker.gateway.apps.GatewayConfig"]
MIDDLEWARE = ["gpubroker.gateway.middleware.RequestMetricsMiddleware"]
ROOT_URLCONF = "gpubroker.gateway.urls"
DATABASES = {"default": database_config(GPUBROKER.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
APPEND_SLASH = False
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
LOGGING_CONFIG = None
