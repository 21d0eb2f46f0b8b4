"""How often each cacheable query was asked lately, across instances: what cache warming warms.

Each instance counts the GETs of the routes whose answers are cached (path and query string as
sent) in memory, a dict increment on the request path, and adds its counts to Redis every few
seconds, into one sorted set per minute that expires after two hours; ``top`` sums the minutes
of a window. Without Redis (embedded, or while it is away) the counts stay in this instance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from gpubroker.core.redis_pool import shared_redis

log = logging.getLogger(__name__)

WARMABLE = frozenset({"/api/v2/providers", "/api/v2/providers/ranking", "/api/v2/gpus"})
"""The GET routes whose rendered answers are cached, so warming them saves a client a render."""
BUCKET_S = 60
KEEP_S = 2 * 3600
FLUSH_EVERY_S = 5.0
KEY_PREFIX = "gpubroker:queries:"


class QueryCounts:
    def __init__(self, redis_url: str | None) -> None:
        self._redis: Any = shared_redis(redis_url) if redis_url else None
        self._pending: Counter[str] = Counter()
        self._local: dict[int, Counter[str]] = {}

    def count(self, path: str, query_string: bytes) -> None:
        if path in WARMABLE:
            self._pending[f"{path}?{query_string.decode('latin-1')}" if query_string else path] += 1

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, Counter()
        if not pending:
            return
        bucket = int(time.time() // BUCKET_S)
        if self._redis is not None:
            key = f"{KEY_PREFIX}{bucket}"
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for query, count in pending.items():
                        pipe.zincrby(key, count, query)
                    pipe.expire(key, KEEP_S)
                    await pipe.execute()
                return
            except Exception as exc:  # Redis away: keep counting here
                log.warning("query counts kept in this instance, Redis is unavailable: %s", exc)
        self._local.setdefault(bucket, Counter()).update(pending)
        for old in [b for b in self._local if b < bucket - KEEP_S // BUCKET_S]:
            del self._local[old]

    async def top(self, window_s: float, limit: int) -> list[tuple[str, int]]:
        """The ``limit`` most asked queries of the last ``window_s`` seconds, most asked first."""
        await self.flush()
        now = int(time.time() // BUCKET_S)
        buckets = range(now - max(int(window_s // BUCKET_S), 0), now + 1)
        totals: Counter[str] = Counter()
        for bucket in buckets:
            totals.update(self._local.get(bucket, {}))
        if self._redis is not None:
            try:
                pairs = await self._redis.zunion([f"{KEY_PREFIX}{bucket}" for bucket in buckets], withscores=True)
                totals.update({member.decode(): int(score) for member, score in pairs})
            except Exception as exc:
                log.warning("query counts from this instance only, Redis is unavailable: %s", exc)
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
