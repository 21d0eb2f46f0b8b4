"""Redis clients for the request path: pooled, short timeouts, and waiting for a free connection.

Under a burst, more requests want Redis at once than the pool has connections; a blocking pool
makes them queue briefly for one instead of failing, which would push the cache and the rate
limiter into their degraded modes for no reason.
"""

from __future__ import annotations

from typing import Any

MAX_CONNECTIONS = 128
TIMEOUT_S = 0.25
POOL_WAIT_S = 1.0


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
