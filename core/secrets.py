"""Where provider credentials come from: Vault (KV v2 via hvac) in production, the environment
embedded.

Credentials are read per provider as a mapping of names to values: the platform's own, and, for
renting, an Enterprise user's own (their integration, ``gateway.models.Integration``; the
embedded store reads those from the embedded vault's files). The Vault store keeps the last
values it read and serves them for up to ``max_stale`` (one hour) while Vault is unreachable, so
a Vault outage does not stop polling or renting; after that it raises
``CredentialsUnavailable`` with the reason, which the worker reports as unhealthy.

Which credentials a rental uses travels on the bus as a reference (``PLATFORM_CREDENTIALS`` or
``user_credentials_ref(user_id)``), never as the values: Kafka records are not a secret store.
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
from gpubroker.core.vault import KeyValueVault, VaultKV, open_vault, refusal
from gpubroker.core.vault_policies import integration_path

MAX_STALE_S = 3600.0
PLATFORM_CREDENTIALS = "platform"
_USER_REF = "user:"


def user_credentials_ref(user_id: int) -> str:
    """The reference to ``user_id``'s own credentials (for whichever provider is asked)."""
    return f"{_USER_REF}{user_id}"


def credentials_user(ref: str) -> int | None:
    """The user whose own credentials ``ref`` names, or None for the platform's; a ``ValueError``
    naming the reference when it is neither."""
    if ref == PLATFORM_CREDENTIALS:
        return None
    if ref.startswith(_USER_REF) and ref[len(_USER_REF) :].isdigit():
        return int(ref[len(_USER_REF) :])
    raise ValueError(f"unknown credentials reference {ref!r}; {PLATFORM_CREDENTIALS!r} or 'user:<id>'")


class SecretStore(Protocol):
    async def credentials(self, provider: str) -> Credentials: ...

    async def user_credentials(self, provider: str, user_id: int) -> Credentials | None:
        """``user_id``'s own credentials for ``provider``; None when they have stored none."""

    def cache_note(self, provider: str) -> str | None:
        """Why the provider's last credentials came from the cache (the store was away), with
        how long they may still serve; None when they were read fresh."""


class EnvSecretStore:
    """``GPUBROKER_SECRET_<PROVIDER>_<NAME>=value`` for each credential; users' own from
    ``users`` (the embedded vault) when given."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, users: KeyValueVault | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._users = users

    def cache_note(self, provider: str) -> str | None:
        return None

    async def user_credentials(self, provider: str, user_id: int) -> Credentials | None:
        values = await self._users.read(integration_path(user_id, provider)) if self._users is not None else None
        return Credentials(values) if values else None

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
        self._cache: dict[str, tuple[float, Credentials | None]] = {}
        self._notes: dict[str, str] = {}

    def cache_note(self, provider: str) -> str | None:
        return self._notes.get(provider)

    async def credentials(self, provider: str) -> Credentials:
        found = await self._read(provider, f"{self._prefix}/{provider}")
        return found if found is not None else Credentials()  # nothing stored: a public API

    async def user_credentials(self, provider: str, user_id: int) -> Credentials | None:
        return await self._read(f"user {user_id}'s {provider}", integration_path(user_id, provider))

    async def _read(self, name: str, path: str) -> Credentials | None:
        """The values at ``path`` (None when nothing is stored), cached under ``name``."""
        try:
            values = await asyncio.to_thread(self._vault.read_now, path)
        except Exception as exc:  # any failure to reach or read Vault falls back to the cache
            return self._cached(name, failure=_failure(exc), reason=_describe(exc))
        creds = Credentials(values) if values is not None else None
        self._cache[name] = (self._clock(), creds)
        self._notes.pop(name, None)
        return creds

    def _cached(self, name: str, *, failure: str, reason: str) -> Credentials | None:
        cached = self._cache.get(name)
        if cached is None:
            raise CredentialsUnavailable(f"{failure} and no cached credentials for {name}: {reason}")
        age = self._clock() - cached[0]
        if age > self._max_stale_s:
            self._notes.pop(name, None)
            raise CredentialsUnavailable(
                f"{failure} for {name} and cached credentials are {age:.0f}s old "
                f"(limit {self._max_stale_s:.0f}s): {reason}"
            )
        self._notes[name] = (
            f"Vault unavailable ({reason}); using credentials read {age:.0f}s ago, "
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
    return EnvSecretStore(users=open_vault(settings))
