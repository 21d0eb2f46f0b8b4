from datetime import UTC, datetime

import aiohttp
import pytest

from gpubroker.core.adapter import PollContext
from gpubroker.core.errors import (
    ProviderBadResponse,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnreachable,
)
from gpubroker.core.testkit.replay import Faults, ReplayServer
from gpubroker.workers.poll import Poller
from gpubroker.workers.transport import HttpTransport
from tests.workers.conftest import FAST_RETRY
from tests.workers.pager import PagerAdapter

CTX = PollContext(PagerAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


async def test_follows_pages_and_normalises_every_record(pager_poller: Poller) -> None:
    result = await pager_poller.poll(CTX)
    assert sorted(offer.provider_offer_id for offer in result.offers) == ["4090-1", "a100-8", "h100-1"]
    assert result.calls == 2
    a100 = next(offer for offer in result.offers if offer.provider_offer_id == "a100-8")
    assert (a100.gpu_type, a100.gpu_memory_gb, a100.gpu_count) == ("A100", 80, 8)


async def test_pagination_that_loops_ends(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.scenario = "loop"
    result = await pager_poller.poll(CTX)
    assert result.offers == [] and result.calls == 1


async def test_malformed_records_are_counted_not_fatal(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.scenario = "bad_record"
    result = await pager_poller.poll(CTX)
    assert [offer.provider_offer_id for offer in result.offers] == ["ok-1"]
    assert result.rejected == 2


async def test_server_errors_are_retried_then_typed(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.faults = Faults(status=503)
    with pytest.raises(ProviderHTTPError) as error:
        await pager_poller.poll(CTX)
    assert error.value.status == 503
    assert len(pager_server.requests) == FAST_RETRY.attempts


async def test_a_transient_error_is_retried_to_success(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.faults = Faults(status=502, every=2)  # every second request fails
    result = await pager_poller.poll(CTX)
    assert len(result.offers) == 3


async def test_rate_limit_is_typed_with_retry_after(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.faults = Faults(status=429, headers={"Retry-After": "0"})
    with pytest.raises(ProviderRateLimited) as error:
        await pager_poller.poll(CTX)
    assert error.value.retry_after == 0


async def test_client_errors_are_not_retried(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.scenario = "not_found"
    with pytest.raises(ProviderHTTPError) as error:
        await pager_poller.poll(CTX)
    assert error.value.status == 404
    assert len(pager_server.requests) == 1


async def test_a_hanging_provider_times_out(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.faults = Faults(hang=True)
    with pytest.raises(ProviderTimeout):
        await pager_poller.poll(CTX)


async def test_malformed_body_is_a_bad_response(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.faults = Faults(malformed=True)
    with pytest.raises(ProviderBadResponse, match="malformed JSON"):
        await pager_poller.poll(CTX)


async def test_unreachable_provider() -> None:
    async with aiohttp.ClientSession() as session:
        transport = HttpTransport(session, provider="pager", base_url="http://127.0.0.1:1", timeout_s=0.5)
        with pytest.raises(ProviderUnreachable, match="pager"):
            await Poller(PagerAdapter(), transport, retry=FAST_RETRY).poll(CTX)


async def test_an_answer_of_the_wrong_shape_is_a_bad_response(pager_poller: Poller, pager_server: ReplayServer) -> None:
    pager_server.scenario = "wrong_shape"
    with pytest.raises(ProviderBadResponse, match="could not read the answer to GET /v1/offers: KeyError"):
        await pager_poller.poll(CTX)
