"""The JWT signing keys (RS256), kept in the vault and rotated by ``kid``.

The vault holds every key still needed: the current one signs, and older ones keep verifying the
tokens they signed until those expire (``retire_after``), after which rotation drops them. Every
gateway instance reads the key set from the vault and reloads it every ``RELOAD_S``, so a
rotation done anywhere (``gpubroker auth rotate-key``) reaches all instances within a minute.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gpubroker.core.vault import KeyValueVault

RELOAD_S = 60.0
KEY_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    retire_after: datetime | None
    """When the key stops verifying (set when a newer key takes over signing)."""

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def to_json(self) -> dict[str, str | None]:
        retire = None if self.retire_after is None else self.retire_after.isoformat()
        return {"kid": self.kid, "private_pem": self.private_pem.decode(), "retire_after": retire}

    @classmethod
    def new(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cls(kid=secrets.token_hex(8), private_pem=pem, retire_after=None)


class KeyRing:
    def __init__(self, vault: KeyValueVault, path: str, *, max_token_ttl_s: int) -> None:
        self._vault = vault
        self._path = path
        self._max_token_ttl_s = max_token_ttl_s
        self._current: SigningKey | None = None
        self._public: dict[str, rsa.RSAPublicKey] = {}
        self._private: rsa.RSAPrivateKey | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the key set; the very first gateway creates it."""
        async with self._lock:
            keys = await self._read()
            if not keys:
                keys = [SigningKey.new()]
                await self._write(keys)
            self._use(keys)

    async def rotate(self, now: datetime | None = None) -> str:
        """Sign with a new key from now on; the old ones verify until their tokens expire."""
        now = now or datetime.now(UTC)
        async with self._lock:
            retire = now + timedelta(seconds=self._max_token_ttl_s)
            kept = [
                key if key.retire_after is not None else SigningKey(key.kid, key.private_pem, retire)
                for key in await self._read()
                if key.retire_after is None or key.retire_after > now
            ]
            fresh = SigningKey.new()
            await self._write([*kept, fresh])
            self._use([*kept, fresh])
            return fresh.kid

    async def refresh_if_due(self) -> None:
        if time.monotonic() - self._loaded_at >= RELOAD_S:
            try:
                await self.load()
            except Exception:  # the vault is away: keep verifying with the keys already known
                self._loaded_at = time.monotonic()

    @property
    def signing(self) -> tuple[str, rsa.RSAPrivateKey]:
        if self._current is None or self._private is None:
            raise RuntimeError("signing keys not loaded")
        return self._current.kid, self._private

    def verifying(self, kid: str) -> rsa.RSAPublicKey | None:
        return self._public.get(kid)

    def _use(self, keys: list[SigningKey]) -> None:
        now = datetime.now(UTC)
        current = next(key for key in reversed(keys) if key.retire_after is None)
        self._current, self._private = current, current.private_key
        self._public = {key.kid: key.public_key for key in keys if key.retire_after is None or key.retire_after > now}
        self._loaded_at = time.monotonic()

    async def _read(self) -> list[SigningKey]:
        stored = await self._vault.read(self._path)
        if not stored or "keys" not in stored:
            return []
        return [
            SigningKey(
                kid=item["kid"],
                private_pem=item["private_pem"].encode(),
                retire_after=None if item["retire_after"] is None else datetime.fromisoformat(item["retire_after"]),
            )
            for item in orjson.loads(stored["keys"])
        ]

    async def _write(self, keys: list[SigningKey]) -> None:
        await self._vault.write(self._path, {"keys": orjson.dumps([key.to_json() for key in keys]).decode()})
