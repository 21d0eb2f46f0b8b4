"""Polling a plugin against a replay server, the way the worker runtime does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import aiohttp

from gpubroker.core.adapter import PollContext, ProviderAdapter
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.workers.poll import Poller, RetryPolicy
from gpubroker.workers.transport import HttpTransport

QUICK_RETRY = RetryPolicy(attempts=2, initial_s=0.01, max_s=0.05)


async def poll_replay(
    adapter: type[ProviderAdapter],
    server: ReplayServer,
    *,
    credentials: Mapping[str, str] | None = None,
    timeout_s: float = 2.0,
    retry: RetryPolicy = QUICK_RETRY,
    observed_at: datetime | None = None,
) -> list[Offer]:
    """One poll of ``adapter`` against ``server``; raises the same typed errors a worker sees."""
    ctx = PollContext(adapter.info, observed_at or datetime.now(UTC), "live", Credentials(credentials))
    async with aiohttp.ClientSession() as session:
        transport = HttpTransport(session, provider=adapter.info.name, base_url=server.url, timeout_s=timeout_s)
        result = await Poller(adapter(), transport, retry=retry).poll(ctx)
    return result.offers
