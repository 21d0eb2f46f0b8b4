from collections.abc import Iterator

import aiohttp
import pytest

from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.workers.poll import Poller, RetryPolicy
from gpubroker.workers.transport import HttpTransport
from tests.workers.pager import PagerAdapter

FAST_RETRY = RetryPolicy(attempts=3, initial_s=0.01, max_s=0.05)


@pytest.fixture
def pager_server() -> Iterator[ReplayServer]:
    assert PagerAdapter.recordings is not None
    with ReplayServer(PagerAdapter.recordings) as server:
        yield server


@pytest.fixture
async def pager_poller(pager_server: ReplayServer):  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as session:
        transport = HttpTransport(session, provider="pager", base_url=pager_server.url, timeout_s=0.5)
        yield Poller(PagerAdapter(), transport, retry=FAST_RETRY)
