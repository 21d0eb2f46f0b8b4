"""Sliding-window rate limits, shared by every gateway instance through Redis.

The window is one second, estimated from two fixed windows: the count of the current second
plus the previous second's count weighted by how much of it still overlaps the sliding window.
A request is admitted while that estimate is below the limit. This smooths bursts at window
edges (a fixed window would allow twice the limit across one)
while each check stays one atomic Lua call touching two keys.

When Redis is unreachable the limiter falls back to the same algorithm in this process, each
instance enforcing its share of the limit: the limit divided by the number of live instances,
which every instance records in Redis while it is up (``keep_presence``) and which the last
count seen stands for during an outage. A client spread over the instances (as a load balancer
spreads it) then gets the limit in all; a client whose traffic lands on one instance gets only
that instance's share until Redis answers again. The degraded mode is logged, never an outage,
and the limiter tries Redis again a second after it failed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from gpubroker.core.redis_pool import RETRY_AFTER_FAILURE_S, shared_redis

log = logging.getLogger(__name__)

WINDOW_MS = 1000
FAILURES_BEFORE_BACKOFF = 3
PRESENCE_EVERY_S = 2.0
PRESENCE_TTL_S = 10.0
"""An instance that has not said it is live for this long no longer counts."""

_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[1])
local elapsed = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local estimate = previous * (window - elapsed) / window + current
if estimate >= limit then
  return {0, current, previous}
end
current = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], window * 2)
return {1, current, previous}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float
    """How long until one more request fits (0 when allowed)."""
    reset_s: float
    """How long until the current window ends."""


class SlidingWindowLimiter:
    def __init__(
        self, redis_url: str | None, *, prefix: str = "gpubroker:rate:", clock: Callable[[], float] = time.time
    ) -> None:
        self._prefix = prefix
        self._clock = clock
        self._local: dict[tuple[str, int, int], int] = {}
        self.instance_id = secrets.token_hex(6)
        self.instances = 1
        """Live gateway instances, as last seen in Redis: the divisor of each limit while Redis is away."""
        self._redis = None
        self._script = None
        self._redis_down_until = 0.0
        self._failures = 0
        if redis_url:
            self._redis = shared_redis(redis_url)
            self._script = self._redis.register_script(_SCRIPT)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def shared(self) -> bool:
        """False while the limiter is degraded to per-instance counting."""
        return self._redis is not None and self._clock() >= self._redis_down_until

    async def check(self, identity: str, limit: int, *, window_ms: int = WINDOW_MS) -> Decision:
        """Count one request of ``identity`` against ``limit`` per ``window_ms`` (a second by
        default; longer windows suit slow things such as failed sign-ins)."""
        now_ms = int(self._clock() * 1000)
        window, elapsed = divmod(now_ms, window_ms)
        base = f"{self._prefix}{identity}:" if window_ms == WINDOW_MS else f"{self._prefix}{identity}:{window_ms}:"
        keys = [f"{base}{window}", f"{base}{window - 1}"]
        if self.shared:
            try:
                allowed, current, previous = await self._script(keys=keys, args=[limit, elapsed, window_ms])  # type: ignore[misc]
                self._failures = 0
                return _decision(bool(allowed), int(current), int(previous), limit, elapsed, window_ms)
            except Exception as exc:  # Redis trouble degrades to per-instance limits, never to an error
                self._failures += 1
                if self._failures >= FAILURES_BEFORE_BACKOFF:  # not one slow answer: Redis is away
                    log.warning(
                        "rate limits: Redis unavailable (%s); each of %d instances enforces its share for %.0fs",
                        type(exc).__name__,
                        self.instances,
                        RETRY_AFTER_FAILURE_S,
                    )
                    self._redis_down_until = self._clock() + RETRY_AFTER_FAILURE_S
        share = max(1, limit // max(1, self.instances))
        return self._check_locally(identity, share, elapsed, now_ms, window_ms)

    async def keep_presence(self, every_s: float = PRESENCE_EVERY_S) -> None:
        """Say in Redis that this instance is live, and learn how many are, every ``every_s``."""
        if self._redis is None:
            return
        key = f"{self._prefix}instances"
        while True:
            now = self._clock()
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.zadd(key, {self.instance_id: now})
                    pipe.zremrangebyscore(key, "-inf", now - PRESENCE_TTL_S)
                    pipe.zcard(key)
                    pipe.expire(key, int(PRESENCE_TTL_S * 6))
                    _, _, live, _ = await pipe.execute()
                self.instances = max(1, int(live))
            except Exception as exc:  # keep the last count: it is what the outage is shared by
                log.debug("rate limits: could not record this instance's presence (%s)", type(exc).__name__)
            await asyncio.sleep(every_s)

    def _check_locally(self, identity: str, limit: int, elapsed: int, now_ms: int, window_ms: int) -> Decision:
        if len(self._local) > 100_000:  # drop windows that can no longer matter
            self._local = {k: v for k, v in self._local.items() if k[2] >= now_ms // k[1] - 1}
        window = now_ms // window_ms
        current, previous = (
            self._local.get((identity, window_ms, window), 0),
            self._local.get((identity, window_ms, window - 1), 0),
        )
        allowed = previous * (window_ms - elapsed) / window_ms + current < limit
        if allowed:
            current = self._local[(identity, window_ms, window)] = current + 1
        return _decision(allowed, current, previous, limit, elapsed, window_ms)


def _decision(allowed: bool, current: int, previous: int, limit: int, elapsed: int, window_ms: int) -> Decision:
    overlap = (window_ms - elapsed) / window_ms
    estimate = previous * overlap + current
    remaining = max(0, math.floor(limit - estimate))
    reset_s = (window_ms - elapsed) / 1000
    if allowed:
        return Decision(True, limit, remaining, 0.0, reset_s)
    # The estimate falls as the previous window slides out; when it cannot fall below the limit
    # within this window, the next window starts from this one's count alone.
    excess = max(estimate - limit, 0.0) + 1e-3
    window_s = window_ms / 1000
    if previous > 0 and excess < previous * overlap:
        wait_s = excess / previous * window_s  # sliding sheds ``previous`` requests per window
    else:
        wait_s = reset_s + window_s * max(0.0, 1 - limit / max(current, 1)) + 1e-3
    return Decision(False, limit, 0, wait_s, reset_s)
