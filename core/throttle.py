"""Keeping to a provider's own request rate: an async token bucket.

Each worker holds one bucket per provider, sized from ``ProviderInfo.rate_limit_per_minute``.
Requests wait for a token rather than fail, so a burst of pages is spread out instead of
earning a 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    def __init__(
        self,
        rate_per_minute: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self._rate_per_s = rate_per_minute / 60.0
        self._capacity = float(burst if burst is not None else max(1, round(rate_per_minute / 6)))
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Take one token, waiting if none is left; returns how long it waited."""
        async with self._lock:  # first come, first served
            waited = 0.0
            while True:
                self._refill()
                if self._tokens >= 1 - 1e-9:  # tolerate float rounding after an exact wait
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                delay = (1 - self._tokens) / self._rate_per_s
                await self._sleep(delay)
                waited += delay

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate_per_s)
        self._updated = now
