"""Settings from the environment (``GPUBROKER_*``), with the embedded/production switch.

Embedded mode runs everything in one process on in-process backends unless a service is
configured; production mode requires every service the process uses to be configured and says
which is missing. Values may also come from files, one per setting, in ``GPUBROKER_SECRETS_DIR``
(named like the variable, e.g. ``gpubroker_secret_key``): that is how a Vault agent hands a pod
its secrets without them ever being an environment literal or a ConfigMap entry.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, FilePath, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpubroker.core.errors import ConfigurationError

Process = Literal["gateway", "worker"]

# What a production process must be given. Every process talks to Kafka and reads secrets from
# Vault; only the gateway keeps users in PostgreSQL, shares its cache through Redis and signs
# cursors, so a worker is never handed credentials it does not use.
PRODUCTION_NEEDS: dict[Process, tuple[str, ...]] = {
    "gateway": ("kafka_bootstrap", "redis_url", "database_url", "vault_addr", "secret_key"),
    "worker": ("kafka_bootstrap", "vault_addr"),
}


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "gpubroker"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GPUBROKER_", extra="ignore", frozen=True)

    mode: Literal["embedded", "production"] = "embedded"
    process: Process = Field(default="gateway", description="Which process these settings are for.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Field(default_factory=_default_data_dir)
    secret_key: str = ""

    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=500, description="PostgreSQL connections per gateway.")
    database_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Longest wait for a database connection before answering 503."
    )

    vault_addr: str | None = None
    vault_token: str | None = None
    vault_role_id: str | None = None
    vault_secret_id: str | None = None
    vault_ca_cert: FilePath | None = Field(
        default=None, description="PEM file of the CA that signed the Vault server's certificate (a private CA)."
    )
    vault_mount: str = "secret"
    vault_path_prefix: str = "gpubroker/providers"

    plugins: list[str] | None = None
    plugins_blocked: list[str] = Field(default_factory=list)
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    poll_intervals: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Seconds between a provider's polls, overriding its plugin's (JSON object: provider -> seconds).",
    )
    snapshot_fallback: bool | None = None

    cache_ttl_s: float = Field(default=60.0, gt=0, description="Rendered answers that carry prices.")
    cache_static_ttl_s: float = Field(default=300.0, gt=0, description="Answers that change only with a release.")
    cache_max_entries: int = Field(default=10_000, ge=1)
    index_refresh_s: float = Field(
        default=0.25, ge=0, description="At most this old: how often a changing catalogue is re-indexed for queries."
    )
    cursor_ttl_s: float = Field(default=900.0, gt=0, description="How long a query's pinned order keeps paging exact.")
    offer_history_days: int = Field(default=30, ge=1)
    health_history_days: int = Field(default=7, ge=1)
    audit_history_days: int = Field(default=90, ge=1)

    access_token_ttl_s: int = Field(default=900, ge=60)
    refresh_token_ttl_s: int = Field(default=7 * 24 * 3600, ge=300)
    service_token_ttl_s: int = Field(default=3600, ge=60)
    jwt_key_vault_path: str = "gpubroker/auth/jwt-keys"
    admin_api_key: str | None = Field(default=None, description="An operator's key with the Admin plan.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API from a browser.")
    trust_forwarded_for: bool = Field(
        default=False, description="Take the client's address from X-Forwarded-For (behind a trusted proxy only)."
    )
    webhook_allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="Non-public networks webhooks may still target (tests, private deployments); JSON list of CIDRs.",
    )
    enforce_plans: bool = Field(
        default=False,
        description=(
            "Embedded only: apply plans and rate limits to callers without credentials on this machine too "
            "(production always applies them)."
        ),
    )
    shutdown_drain_s: float = Field(
        default=5.0, ge=0, le=300, description="How long `gpubroker serve` drains on SIGTERM before it stops."
    )
    webhook_retry_initial_s: float = Field(
        default=30.0, gt=0, description="The wait after a webhook delivery's first failed attempt; it doubles."
    )
    webhook_retry_max_delay_s: float = Field(default=4 * 3600.0, gt=0, description="The longest wait between attempts.")
    webhook_retry_window_s: float = Field(
        default=24 * 3600.0, gt=0, description="How long a delivery is retried before it goes to the dead-letter topic."
    )
    webhook_disable_after_s: float = Field(
        default=24 * 3600.0, gt=0, description="A webhook whose every delivery failed for this long is disabled."
    )
    health_failures_to_degrade: int = Field(
        default=3, ge=1, description="Failed plugin-health runs in a row that raise provider.degraded."
    )
    rental_wait_s: float = Field(
        default=30.0, ge=0, le=300, description="How long a provision or scale request waits for the provider's answer."
    )
    reconcile_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often the reconciler compares each provider's tagged instances with the rentals.",
    )
    rental_provision_timeout_s: float = Field(
        default=900.0, gt=0, description="A rental whose instance never appeared at its provider after this fails."
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _production_needs_services(self) -> Settings:
        if self.mode == "production":
            missing = [
                f"GPUBROKER_{name.upper()}" for name in PRODUCTION_NEEDS[self.process] if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"production mode needs {', '.join(missing)} for the {self.process}")
        return self

    @property
    def embedded(self) -> bool:
        return self.mode == "embedded"

    @property
    def plans_enforced(self) -> bool:
        """Whether a caller without credentials on loopback is an anonymous visitor (plans and
        limits apply) rather than the machine's own user, who may use every feature."""
        return not self.embedded or self.enforce_plans

    @property
    def serve_snapshot_when_offline(self) -> bool:
        return self.embedded if self.snapshot_fallback is None else self.snapshot_fallback

    @cached_property
    def signing_key(self) -> str:
        """The key that signs cursors; random per process when none is configured (embedded)."""
        return self.secret_key or secrets.token_urlsafe(32)

    def base_url_for(self, provider: str, default: str) -> str:
        return self.provider_base_urls.get(provider, default).rstrip("/")


def load_settings(process: Process = "gateway") -> Settings:
    """Read settings for ``process``, turning validation errors into one message that names the
    variables."""
    secrets_dir = os.environ.get("GPUBROKER_SECRETS_DIR") or None
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise ConfigurationError(f"GPUBROKER_SECRETS_DIR: {secrets_dir} is not a directory")
    try:
        return Settings(process=process, _secrets_dir=secrets_dir)
    except ValidationError as exc:
        problems = "; ".join(
            f"GPUBROKER_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
