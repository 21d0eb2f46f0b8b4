"""What the guard asks the database about a caller: who owns an API key, and whether the account
and key behind a token still exist, are active and on which plan.

Tokens are checked on use, not only when made: a revoked key, a disabled or deleted account, or a
changed plan takes effect for every key and token within ``REMEMBER_S`` seconds (5), the time an
answer is remembered in each gateway instance (revoking a key forgets it at once in the instance
that revoked it). Lookups run on a pooled connection (``gateway.db``).

While the database is away, an answer this instance had is used for up to ``OUTAGE_GRACE_S``
(10 minutes), so callers it already knew keep reading offers; a caller it never saw gets a 503.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gpubroker.gateway import db
from gpubroker.gateway.identity.apikeys import digest
from gpubroker.gateway.identity.plans import Plan

REMEMBER_S = 5.0
OUTAGE_GRACE_S = 600.0
MAX_REMEMBERED = 10_000

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class KeyOwner:
    key_id: int
    prefix: str
    user_id: int
    plan: Plan


class _Remembered(Generic[K, V]):
    """Answers kept for ``REMEMBER_S``; cleared whole when too many, which only costs lookups."""

    def __init__(self) -> None:
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K, *, grace_s: float = 0.0) -> tuple[bool, V | None]:
        """(known, answer): known while fresh, or up to ``grace_s`` past that."""
        entry = self._entries.get(key)
        if entry is None or entry[0] + grace_s <= time.monotonic():
            return False, None
        return True, entry[1]

    async def lookup(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """The remembered answer, else ``work()``'s (remembered); with the database away, a
        stale answer within the grace, else ``DatabaseUnavailable``."""
        known, value = self.get(key)
        if known:
            return value  # type: ignore[return-value]
        try:
            value = await work()
        except db.DatabaseUnavailable:
            known, value = self.get(key, grace_s=OUTAGE_GRACE_S)
            if not known:
                raise
            return value  # type: ignore[return-value]
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= MAX_REMEMBERED:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > time.monotonic()}
            if len(self._entries) >= MAX_REMEMBERED:
                self._entries.clear()
        self._entries[key] = (time.monotonic() + REMEMBER_S, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def forget_where(self, matches: Callable[[V], bool]) -> None:
        """Drop every answer ``matches`` picks (a rare, administrative change: a full pass is fine)."""
        self._entries = {key: entry for key, entry in self._entries.items() if not matches(entry[1])}


class Accounts:
    def __init__(self) -> None:
        self._keys: _Remembered[str, KeyOwner | None] = _Remembered()
        self._key_ids: _Remembered[int, KeyOwner | None] = _Remembered()
        self._plans: _Remembered[int, Plan | None] = _Remembered()

    async def by_key(self, key: str) -> KeyOwner | None:
        """Who an API key belongs to; None for an unknown or revoked key or an inactive user."""
        key_digest = digest(key)
        return await self._keys.lookup(key_digest, lambda: db.run(_key_owner, digest=key_digest))

    async def by_key_id(self, key_id: int) -> KeyOwner | None:
        """The owner of the API key a service token was made from, while the key is valid."""
        return await self._key_ids.lookup(key_id, lambda: db.run(_key_owner, pk=key_id))

    async def plan(self, user_id: int) -> Plan | None:
        """The user's plan now; None for a deleted or disabled account."""
        return await self._plans.lookup(user_id, lambda: db.run(_plan, user_id))

    def forget_key(self, key_digest: str, key_id: int) -> None:
        self._keys.forget(key_digest)
        self._key_ids.forget(key_id)

    def forget_user(self, user_id: int) -> None:
        """The user's plan or standing changed: their tokens and keys are looked up afresh here at
        once (other instances within ``REMEMBER_S``)."""
        self._plans.forget(user_id)
        for remembered in (self._keys, self._key_ids):
            remembered.forget_where(lambda owner: owner is not None and owner.user_id == user_id)


def _key_owner(**match: object) -> KeyOwner | None:
    from gpubroker.gateway.models import ApiKey

    found = ApiKey.objects.select_related("user").filter(revoked_at__isnull=True, user__is_active=True, **match).first()
    return None if found is None else KeyOwner(found.pk, found.prefix, found.user_id, Plan(found.user.plan))


def _plan(user_id: int) -> Plan | None:
    from gpubroker.gateway.models import User

    plan = User.objects.filter(pk=user_id, is_active=True).values_list("plan", flat=True).first()
    return None if plan is None else Plan(plan)
