"""Redis clients for the request path: pooled, waiting for a free connection, with timeouts.

Under a burst, more requests want Redis at once than the pool has connections, and on a busy
machine an answer can take a few hundred milliseconds; a blocking pool and a one-second timeout
make such requests wait instead of failing, which would send the cache and the rate limiter to
their degraded modes (and a rate limit to per-instance counting) for no reason. A Redis that is
down refuses connections at once, so the degraded modes still start without delay.
"""

from __future__ import annotations

from typing import Any

MAX_CONNECTIONS = 128
TIMEOUT_S = 1.0
POOL_WAIT_S = 1.0
RETRY_AFTER_FAILURE_S = 1.0
"""How long the cache and the rate limiter leave Redis alone after it failed them: short, so
they use it again within about a second of its return."""


def shared_redis(url: str) -> Any:
    import redis.asyncio as redis

    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=TIMEOUT_S,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
    )
    return redis.Redis(connection_pool=pool)
