"""API keys for machine-to-machine use: made, shown once, stored as digests, revocable.

A key is ``gpb_`` and 43 random URL-safe characters. Verified keys are remembered in this
process for ``REMEMBER_S``; revoking a key forgets it here at once and on other instances
within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async

PREFIX = "gpb_"
REMEMBER_S = 5.0


@dataclass(frozen=True)
class KeyOwner:
    key_id: int
    prefix: str
    user_id: int
    plan: str


def new_key() -> tuple[str, str, str]:
    """A fresh key, its display prefix and its digest (only the last two are stored)."""
    key = PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(PREFIX) + 6], digest(key)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self) -> None:
        self._known: dict[str, tuple[float, KeyOwner | None]] = {}

    async def owner(self, key: str) -> KeyOwner | None:
        """Who a key belongs to, or None for an unknown or revoked key or an inactive user."""
        key_digest = digest(key)
        remembered = self._known.get(key_digest)
        if remembered is not None and remembered[0] > time.monotonic():
            return remembered[1]
        owner = await sync_to_async(_lookup, thread_sensitive=False)(key_digest)
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key_digest] = (time.monotonic() + REMEMBER_S, owner)
        return owner

    def forget(self, key_digest: str) -> None:
        self._known.pop(key_digest, None)


def _lookup(key_digest: str) -> KeyOwner | None:
    from django.db import close_old_connections

    from gpubroker.gateway.models import ApiKey

    close_old_connections()
    found = (
        ApiKey.objects.select_related("user")
        .filter(digest=key_digest, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return None if found is None else KeyOwner(found.pk, found.prefix, found.user_id, found.user.plan)
