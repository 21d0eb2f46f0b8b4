"""Reading and writing secrets by path: Vault KV v2 in production, private files embedded.

Provider credentials, the JWT signing keys, users' provider integrations and webhook signing
secrets all live here, never in the database. ``VaultKV`` logs in by token or AppRole and renews
its token when two thirds of the lease have passed, so a long-running process never loses it. Over
HTTPS it verifies the server's certificate, against ``ca_cert`` when given (a private CA) or the
system's trusted CAs otherwise; verification cannot be turned off.
``LocalKV`` is the embedded stand-in: one JSON file per path under the data directory, readable
by its owner only.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson

from gpubroker.core.errors import VaultPermissionDenied, VaultUnavailable
from gpubroker.core.settings import Settings

T = TypeVar("T")


class KeyValueVault(Protocol):
    async def read(self, path: str) -> dict[str, str] | None: ...

    async def write(self, path: str, values: dict[str, str]) -> None: ...

    async def delete(self, path: str) -> None: ...


class VaultKV:
    def __init__(
        self,
        addr: str,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        mount: str = "secret",
        ca_cert: Path | None = None,
        timeout_s: float = 3.0,
    ) -> None:
        self.client = vault_client(addr, token=token, ca_cert=ca_cert, timeout_s=timeout_s)
        self._role_id, self._secret_id = role_id, secret_id
        self._mount = mount
        self._renew_at: float | None = None  # monotonic time to renew the token; None: never
        self._token_known = False
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vault")

    async def read(self, path: str) -> dict[str, str] | None:
        return await self._off_loop(self.read_now, path)

    async def write(self, path: str, values: dict[str, str]) -> None:
        await self._off_loop(self._write, path, values)

    async def delete(self, path: str) -> None:
        await self._off_loop(self._delete, path)

    async def _off_loop(self, work: Callable[..., T], *args: object) -> T:
        """On the vault's own few threads: a vault that hangs cannot take the threads other work
        needs (each call gives up after the client's timeout)."""
        call = functools.partial(_unavailable_as_error, work, *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def read_now(self, path: str) -> dict[str, str] | None:
        """Blocking read, for callers already off the event loop; None when nothing is stored."""
        import hvac.exceptions

        self.keep_token_alive()
        try:
            answer = self.client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self._mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        return {str(k): str(v) for k, v in answer["data"]["data"].items()}

    def _write(self, path: str, values: dict[str, str]) -> None:
        self.keep_token_alive()
        self.client.secrets.kv.v2.create_or_update_secret(path=path, secret=values, mount_point=self._mount)

    def _delete(self, path: str) -> None:
        self.keep_token_alive()
        self.client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=self._mount)

    def keep_token_alive(self) -> None:
        """Log in (AppRole) or learn the token's lease, and renew it when two thirds of the lease
        have passed, so it never expires under a running process."""
        now = time.monotonic()
        if self._role_id and not self._token_known:
            self._lease(self.client.auth.approle.login(role_id=self._role_id, secret_id=self._secret_id)["auth"], now)
        elif not self._token_known:
            data = self.client.auth.token.lookup_self()["data"]
            self._lease({"lease_duration": data.get("ttl", 0), "renewable": data.get("renewable", False)}, now)
        elif self._renew_at is not None and now >= self._renew_at:
            try:
                self._lease(self.client.auth.token.renew_self()["auth"], now)
            except Exception:
                if not self._role_id:
                    raise
                self._token_known = False  # the lease ran out: log in again
                self.keep_token_alive()

    def _lease(self, auth: dict[str, object], now: float) -> None:
        duration = float(auth.get("lease_duration") or 0)  # type: ignore[arg-type]
        self._token_known = True
        self._renew_at = now + duration * 2 / 3 if duration > 0 and (auth.get("renewable") or self._role_id) else None


def vault_client(addr: str, *, token: str | None, ca_cert: Path | None = None, timeout_s: float = 3.0) -> Any:
    """An hvac client that always verifies TLS: against ``ca_cert`` when given, else the system's
    CAs. An explicit ``verify`` also keeps hvac from reading ``VAULT_CACERT``/``VAULT_CAPATH``."""
    import hvac

    return hvac.Client(url=addr, token=token, verify=str(ca_cert) if ca_cert else True, timeout=timeout_s)


class LocalKV:
    """Embedded mode's vault: ``<data_dir>/secrets/<path>.json``, mode 0600."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _file(self, path: str) -> Path:
        parts = [part for part in path.split("/") if part not in ("", ".", "..")]
        return self._root.joinpath(*parts).with_suffix(".json")

    async def read(self, path: str) -> dict[str, str] | None:
        try:
            return dict(orjson.loads(self._file(path).read_bytes()))
        except FileNotFoundError:
            return None

    async def write(self, path: str, values: dict[str, str]) -> None:
        file = self._file(path)
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = file.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(values))
        temporary.replace(file)

    async def delete(self, path: str) -> None:
        self._file(path).unlink(missing_ok=True)


def _unavailable_as_error(work: Callable[..., T], *args: object) -> T:
    """``work(*args)``, any failure of the vault or of reaching it (refused, timed out, an error
    status, a garbled answer while it starts) turned into ``VaultUnavailable``; a missing path is
    not a failure (reads answer None); a refusal (403) is ``VaultPermissionDenied``."""
    import hvac.exceptions

    try:
        return work(*args)
    except hvac.exceptions.Forbidden as exc:
        raise VaultPermissionDenied(f"the vault refused: {refusal(exc)}") from exc
    except Exception as exc:
        raise VaultUnavailable(f"the vault did not answer: {type(exc).__name__}") from exc


def refusal(exc: Exception) -> str:
    """What a 403 from Vault refused, naming the path (hvac's message is only "1 error occurred")."""
    path = urlsplit(getattr(exc, "url", None) or "").path.removeprefix("/v1/") or "the request"
    return f"permission denied on {path} (this identity's Vault policy does not cover it)"


def open_vault(settings: Settings) -> KeyValueVault:
    if settings.vault_addr:
        return VaultKV(
            settings.vault_addr,
            token=settings.vault_token,
            role_id=settings.vault_role_id,
            secret_id=settings.vault_secret_id,
            mount=settings.vault_mount,
            ca_cert=settings.vault_ca_cert,
        )
    return LocalKV(settings.data_dir / "secrets")
