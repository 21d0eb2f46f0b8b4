"""Where provider credentials come from: Vault (KV v2 via hvac) in production, the environment
embedded.

Credentials are read per provider as a mapping of names to values. The Vault store keeps the
last values it read and serves them for up to ``max_stale`` (one hour) while Vault is
unreachable, so a Vault outage does not stop polling; after that it raises
``CredentialsUnavailable`` with the reason, which the worker reports as unhealthy.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from gpubroker.core.errors import CredentialsUnavailable
from gpubroker.core.provider import Credentials
from gpubroker.core.settings import Settings
from gpubroker.core.vault import VaultKV, refusal

MAX_STALE_S = 3600.0


class SecretStore(Protocol):
    async def credentials(self, provider: str) -> Credentials: ...

    def cache_note(self, provider: str) -> str | None:
        """Why the provider's last credentials came from the cache (the store was away), with
        how long they may still serve; None when they were read fresh."""


class EnvSecretStore:
    """``GPUBROKER_SECRET_<PROVIDER>_<NAME>=value`` for each credential."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def cache_note(self, provider: str) -> str | None:
        return None

    async def credentials(self, provider: str) -> Credentials:
        prefix = f"GPUBROKER_SECRET_{provider.upper()}_"
        return Credentials(
            {
                key[len(prefix) :].lower(): value
                for key, value in self._environ.items()
                if key.startswith(prefix) and value
            }
        )


class VaultSecretStore:
    """KV v2 secrets at ``<mount>/<prefix>/<provider>``, authenticated by token or AppRole."""

    def __init__(
        self,
        addr: str,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        mount: str = "secret",
        prefix: str = "gpubroker/providers",
        ca_cert: Path | None = None,
        timeout_s: float = 3.0,
        max_stale_s: float = MAX_STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._vault = VaultKV(
            addr, token=token, role_id=role_id, secret_id=secret_id, mount=mount, ca_cert=ca_cert, timeout_s=timeout_s
        )
        self._prefix = prefix.strip("/")
        self._max_stale_s = max_stale_s
        self._clock = clock
        self._cache: dict[str, tuple[float, Credentials]] = {}
        self._notes: dict[str, str] = {}

    def cache_note(self, provider: str) -> str | None:
        return self._notes.get(provider)

    async def credentials(self, provider: str) -> Credentials:
        try:
            values = await asyncio.to_thread(self._read, provider)
        except Exception as exc:  # any failure to reach or read Vault falls back to the cache
            return self._cached(provider, failure=_failure(exc), reason=_describe(exc))
        creds = Credentials(values)
        self._cache[provider] = (self._clock(), creds)
        self._notes.pop(provider, None)
        return creds

    def _read(self, provider: str) -> dict[str, str]:
        # Nothing stored for a provider means a public API: no credentials.
        return self._vault.read_now(f"{self._prefix}/{provider}") or {}

    def _cached(self, provider: str, *, failure: str, reason: str) -> Credentials:
        cached = self._cache.get(provider)
        if cached is None:
            raise CredentialsUnavailable(f"{failure} and no cached credentials for {provider}: {reason}")
        age = self._clock() - cached[0]
        if age > self._max_stale_s:
            self._notes.pop(provider, None)
            raise CredentialsUnavailable(
                f"{failure} for {provider} and cached credentials are {age:.0f}s old "
                f"(limit {self._max_stale_s:.0f}s): {reason}"
            )
        self._notes[provider] = (
            f"Vault unavailable ({reason}); polling on credentials read {age:.0f}s ago, "
            f"good for {self._max_stale_s - age:.0f}s more"
        )
        return cached[1]


def _failure(exc: BaseException) -> str:
    """A refusal (403) is a policy to fix, not an outage to wait out: say which."""
    import hvac.exceptions

    return "Vault refused" if isinstance(exc, hvac.exceptions.Forbidden) else "Vault unavailable"


def _describe(exc: BaseException) -> str:
    """One line for the worker's health and logs. Exception text from the HTTP stack names the URL
    and error, never the token; a refusal says which path the identity may not read."""
    import hvac.exceptions

    if isinstance(exc, hvac.exceptions.Forbidden):
        return f"Forbidden: {refusal(exc)}"
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def open_secret_store(settings: Settings) -> SecretStore:
    if settings.vault_addr:
        return VaultSecretStore(
            settings.vault_addr,
            token=settings.vault_token,
            role_id=settings.vault_role_id,
            secret_id=settings.vault_secret_id,
            mount=settings.vault_mount,
            prefix=settings.vault_path_prefix,
            ca_cert=settings.vault_ca_cert,
        )
    return EnvSecretStore()
