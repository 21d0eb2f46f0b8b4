"""Sending a plugin's rental calls to a replay server, the way the worker side does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.provider import Credentials
from gpubroker.workers.poll import RetryPolicy
from gpubroker.workers.renting import RentalExecutor
from gpubroker.workers.transport import HttpTransport

QUICK_RETRY = RetryPolicy(attempts=2, initial_s=0.01, max_s=0.05)


@asynccontextmanager
async def rental_executor(
    adapter: type[ProviderAdapter],
    base_url: str,
    *,
    credentials: Mapping[str, str] | None = None,
    timeout_s: float = 2.0,
) -> AsyncIterator[RentalExecutor]:
    """A ``RentalExecutor`` for ``adapter`` against ``base_url``, closed on exit."""
    async with aiohttp.ClientSession() as session:
        transport = HttpTransport(session, provider=adapter.info.name, base_url=base_url, timeout_s=timeout_s)
        yield RentalExecutor(adapter(), transport, Credentials(credentials), retry=QUICK_RETRY)
