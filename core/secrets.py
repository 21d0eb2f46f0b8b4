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
from typing import Protocol

from gpubroker.core.errors import CredentialsUnavailable
from gpubroker.core.provider import Credentials
from gpubroker.core.settings import Settings

MAX_STALE_S = 3600.0


class SecretStore(Protocol):
    async def credentials(self, provider: str) -> Credentials: ...


class EnvSecretStore:
    """``GPUBROKER_SECRET_<PROVIDER>_<NAME>=value`` for each credential."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

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
        timeout_s: float = 3.0,
        max_stale_s: float = MAX_STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import hvac

        self._client = hvac.Client(url=addr, token=token, timeout=timeout_s)
        self._role_id, self._secret_id = role_id, secret_id
        self._mount, self._prefix = mount, prefix.strip("/")
        self._max_stale_s = max_stale_s
        self._clock = clock
        self._cache: dict[str, tuple[float, Credentials]] = {}
        self._renew_at: float | None = None  # monotonic time to renew the token; None: never
        self._token_known = False

    async def credentials(self, provider: str) -> Credentials:
        try:
            values = await asyncio.to_thread(self._read, provider)
        except Exception as exc:  # any failure to reach or read Vault falls back to the cache
            return self._cached(provider, reason=_describe(exc))
        creds = Credentials(values)
        self._cache[provider] = (self._clock(), creds)
        return creds

    def _read(self, provider: str) -> dict[str, str]:
        import hvac.exceptions

        self._keep_token_alive()
        try:
            answer = self._client.secrets.kv.v2.read_secret_version(
                path=f"{self._prefix}/{provider}", mount_point=self._mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return {}  # no credentials stored for this provider: a public API
        return {str(k): str(v) for k, v in answer["data"]["data"].items()}

    def _keep_token_alive(self) -> None:
        """Log in (AppRole) or learn the token's lease, and renew it when two thirds of the lease
        have passed, so it never expires under a running worker."""
        now = time.monotonic()
        if self._role_id and not self._token_known:
            self._lease(self._client.auth.approle.login(role_id=self._role_id, secret_id=self._secret_id)["auth"], now)
        elif not self._token_known:
            data = self._client.auth.token.lookup_self()["data"]
            self._lease({"lease_duration": data.get("ttl", 0), "renewable": data.get("renewable", False)}, now)
        elif self._renew_at is not None and now >= self._renew_at:
            try:
                self._lease(self._client.auth.token.renew_self()["auth"], now)
            except Exception:
                if not self._role_id:
                    raise
                self._token_known = False  # the lease ran out: log in again
                self._keep_token_alive()

    def _lease(self, auth: dict[str, object], now: float) -> None:
        duration = float(auth.get("lease_duration") or 0)  # type: ignore[arg-type]
        self._token_known = True
        self._renew_at = now + duration * 2 / 3 if duration > 0 and (auth.get("renewable") or self._role_id) else None

    def _cached(self, provider: str, *, reason: str) -> Credentials:
        cached = self._cache.get(provider)
        if cached is None:
            raise CredentialsUnavailable(f"Vault unavailable and no cached credentials for {provider}: {reason}")
        age = self._clock() - cached[0]
        if age > self._max_stale_s:
            raise CredentialsUnavailable(
                f"Vault unavailable for {provider} and cached credentials are {age:.0f}s old "
                f"(limit {self._max_stale_s:.0f}s): {reason}"
            )
        return cached[1]


def _describe(exc: BaseException) -> str:
    # Exception text from the HTTP stack names the URL and error, never the token.
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
        )
    return EnvSecretStore()
