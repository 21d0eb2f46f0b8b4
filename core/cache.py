"""A two-tier cache: L2 in this process, then L1 in Redis shared by every instance.

Lookups try L2, then L1, then compute. Concurrent misses on one key compute once (the others
await the same future). Entries are refreshed early with probability rising towards expiry
(probabilistic early expiration, "XFetch"), so a popular key is not recomputed by a stampede at
the moment it expires. Redis failures never fail a request: the cache stops using Redis for a
short back-off and serves from L2 alone. L2 is bounded both in entries and in bytes, evicting the
least recently used.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gpubroker.core.redis_pool import RETRY_AFTER_FAILURE_S, shared_redis

log = logging.getLogger(__name__)

EARLY_EXPIRY_BETA = 1.0


@dataclass(frozen=True)
class Entry:
    value: bytes
    expires_at: float
    compute_s: float

    def fresh(self, now: float, rand: Callable[[], float]) -> bool:
        # XFetch: expire early by compute time x -log(u), so refreshes spread out before expiry.
        return now - self.compute_s * EARLY_EXPIRY_BETA * math.log(max(rand(), 1e-12)) < self.expires_at


class TwoTierCache:
    def __init__(
        self,
        redis_url: str | None = None,
        *,
        ttl_s: float = 60.0,
        max_entries: int = 10_000,
        max_bytes: int = 256 << 20,
        namespace: str = "gpubroker:cache:v1:",
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._l2_bytes = 0
        self._namespace = namespace
        self._clock = clock
        self._rand = rand
        self._l2: OrderedDict[str, Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self._redis = None
        self._redis_down_until = 0.0
        if redis_url:
            self._redis = shared_redis(redis_url)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_s: float | None = None
    ) -> bytes:
        now = self._clock()
        entry = self._l2.get(key)
        if entry is not None and entry.fresh(now, self._rand):
            self._l2.move_to_end(key)
            return entry.value
        inflight = self._inflight.get(key)
        if inflight is not None:
            return await asyncio.shield(inflight)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._load(key, compute, ttl_s or self._ttl_s)
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]

    async def get(self, key: str) -> bytes | None:
        """The value if L2 or Redis holds it unexpired, without computing anything."""
        entry = self._l2.get(key)
        if entry is not None and entry.expires_at > self._clock():
            self._l2.move_to_end(key)
            return entry.value
        shared = await self._redis_get(key)
        if shared is not None:
            self._store_l2(key, Entry(shared, self._clock() + self._ttl_s, 0.0))
        return shared

    async def put(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        ttl_s = ttl_s or self._ttl_s
        self._store_l2(key, Entry(value, self._clock() + ttl_s, 0.0))
        await self._redis_set(key, value, ttl_s)

    async def warm(self, prefix: str, *, limit: int = 1000) -> int:
        """Copy up to ``limit`` Redis entries whose key starts with ``prefix`` into L2, so a new
        instance serves its first requests from memory (returns how many it copied)."""
        if not self.redis_available:
            return 0
        copied = 0
        try:
            async for raw_key in self._redis.scan_iter(match=self._namespace + prefix + "*", count=500):  # type: ignore[union-attr]
                value, ttl_ms = await self._redis.get(raw_key), await self._redis.pttl(raw_key)  # type: ignore[union-attr]
                if value is not None and ttl_ms > 0:
                    key = raw_key.decode()[len(self._namespace) :]
                    self._store_l2(key, Entry(value, self._clock() + ttl_ms / 1000, 0.0))
                    copied += 1
                if copied >= limit:
                    break
        except Exception as exc:
            self._redis_failed(exc)
        return copied

    async def _load(self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_s: float) -> bytes:
        shared = await self._redis_get(key)
        if shared is not None:
            self._store_l2(key, Entry(shared, self._clock() + ttl_s, 0.0))
            return shared
        started = self._clock()
        value = await compute()
        entry = Entry(value, self._clock() + ttl_s, self._clock() - started)
        self._store_l2(key, entry)
        await self._redis_set(key, value, ttl_s)
        return value

    def _store_l2(self, key: str, entry: Entry) -> None:
        replaced = self._l2.pop(key, None)
        if replaced is not None:
            self._l2_bytes -= len(replaced.value)
        self._l2[key] = entry
        self._l2_bytes += len(entry.value)
        while len(self._l2) > self._max_entries or (self._l2_bytes > self._max_bytes and len(self._l2) > 1):
            _, evicted = self._l2.popitem(last=False)
            self._l2_bytes -= len(evicted.value)

    @property
    def redis_available(self) -> bool:
        return self._redis is not None and self._clock() >= self._redis_down_until

    async def _redis_get(self, key: str) -> bytes | None:
        if not self.redis_available:
            return None
        try:
            return await self._redis.get(self._namespace + key)  # type: ignore[union-attr]
        except Exception as exc:  # Redis trouble of any kind degrades to L2, never to an error
            self._redis_failed(exc)
            return None

    async def _redis_set(self, key: str, value: bytes, ttl_s: float) -> None:
        if not self.redis_available:
            return
        try:
            await self._redis.set(self._namespace + key, value, px=int(ttl_s * 1000))  # type: ignore[union-attr]
        except Exception as exc:
            self._redis_failed(exc)

    def _redis_failed(self, exc: Exception) -> None:
        log.warning(
            "Redis unavailable (%s: %s); serving from the in-process cache for %.0fs",
            type(exc).__name__,
            exc,
            RETRY_AFTER_FAILURE_S,
        )
        self._redis_down_until = self._clock() + RETRY_AFTER_FAILURE_S
