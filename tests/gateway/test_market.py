"""The market's 1-minute windows from the stream analytics: kept per GPU type and continent,
served by ``GET /api/v2/analytics/market`` (Pro), pushed to ``market`` subscribers of the
WebSocket and of the market's SSE stream, and reported by ``/health``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from gpubroker.core import events
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import asgi_client
from tests.gateway.test_identity import make_user, with_key
from tests.gateway.test_sockets import Socket
from tests.gateway.test_stream import EventStream

pytestmark = pytest.mark.django_db(transaction=True)


def last_minute() -> datetime:
    """The start of the last closed minute, read when a test runs: the gateway calls analytics quiet
    once no window has closed for a while, so a start fixed when the module was collected would age
    with the suite."""
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def window(gpu: str, continent: str | None, start: datetime | None = None, mean: str = "2.5") -> events.PriceAggregate:
    start = start or last_minute()
    return events.PriceAggregate(
        gpu, continent, start, start + timedelta(minutes=1), 4, Decimal("2"), Decimal(mean), Decimal("3.25")
    )


async def publish(runtime: GatewayRuntime, *windows: events.PriceAggregate) -> None:
    for item in windows:
        await runtime.bus.publish(events.PRICE_AGGREGATES, item.key, item.encode())  # as the analytics do
    for _ in range(100):
        await asyncio.sleep(0)


def test_the_envelope_round_trips_and_bad_ones_are_refused() -> None:
    item = window("H100", "europe")
    assert events.PriceAggregate.decode(item.encode()) == item
    assert item.key == "H100|europe" and window("H100", None).key == "H100|*"
    assert orjson.loads(item.encode())["mean"] == "2.5"
    for bad in (
        {**orjson.loads(item.encode()), "count": 0},
        {**orjson.loads(item.encode()), "window_end": item.window_start.isoformat()},
        {**orjson.loads(item.encode()), "window_start": "2026-11-26T12:00:00"},
        {**orjson.loads(item.encode()), "min": "cheap"},
    ):
        with pytest.raises(ValueError):
            events.PriceAggregate.decode(orjson.dumps(bad))


async def test_the_latest_windows_are_served_to_pro_users(runtime: GatewayRuntime) -> None:
    minute = last_minute()
    await publish(
        runtime,
        window("H100", None, minute - timedelta(minutes=1), mean="9"),
        window("H100", None, minute),
        window("H100", "europe", minute),
        window("A100", None, minute),
        window("H100", "europe", minute - timedelta(minutes=1), mean="9"),  # older, read late: ignored
    )
    client = asgi_client(runtime)
    _, pro = await make_user(Plan.PRO)
    _, free = await make_user(Plan.FREE)
    status, _, body = await client.get("/api/v2/analytics/market", b"gpu=h100&window=1m", with_key(pro))
    assert status == 200
    answer = orjson.loads(body)
    assert [(w["gpu_type"], w["continent"], w["mean_price_per_gpu"]) for w in answer["items"]] == [
        ("H100", None, 2.5),
        ("H100", "europe", 2.5),
    ]
    assert answer["items"][0]["window_start"] == minute.isoformat() and answer["items"][0]["count"] == 4
    assert answer["analytics"]["status"] == "flowing"
    status, _, body = await client.get("/api/v2/analytics/market", b"continent=europe", with_key(pro))
    assert [w["continent"] for w in orjson.loads(body)["items"]] == ["europe"]
    assert (await client.get("/api/v2/analytics/market", b"", with_key(free)))[0] == 403
    for query, field in ((b"window=5m", "window"), (b"continent=atlantis", "continent"), (b"gpu=warp9", "gpu")):
        status, _, body = await client.get("/api/v2/analytics/market", query, with_key(pro))
        assert status == 422 and orjson.loads(body)["detail"][0]["field"] == field


async def test_without_analytics_the_answer_is_empty_and_health_says_quiet(runtime: GatewayRuntime) -> None:
    client = asgi_client(runtime)
    _, pro = await make_user(Plan.PRO)
    status, _, body = await client.get("/api/v2/analytics/market", b"", with_key(pro))
    assert status == 200 and orjson.loads(body)["items"] == []
    health = orjson.loads((await client.get("/health"))[2])
    assert health["analytics"]["status"] == "quiet" and health["analytics"]["last_window_end"] is None
    await publish(runtime, window("H100", None))
    health = orjson.loads((await client.get("/health"))[2])
    assert health["analytics"]["status"] == "flowing" and health["analytics"]["windows_received"] == 1


async def test_closed_windows_reach_market_subscribers_of_their_gpu(runtime: GatewayRuntime) -> None:
    _, pro = await make_user(Plan.PRO)
    async with (
        Socket(runtime, headers=with_key(pro)) as h100,
        Socket(runtime) as prices_only,
        EventStream(runtime, b"gpu=H100", with_key(pro), "/api/v2/analytics/market/stream") as stream,
        EventStream(runtime, b"", with_key(pro)) as offers_stream,
    ):
        await h100.connected()
        await prices_only.connected()
        await h100.say({"type": "subscribe", "channels": ["market", "gpu:H100"]})
        refused = await prices_only.say({"type": "subscribe", "channels": ["market"]})  # anonymous
        assert refused == {"type": "error", "message": "the market channel needs the Pro plan"}
        await prices_only.say({"type": "subscribe", "channels": ["price_updates"]})
        await publish(runtime, window("A100", None), window("H100", "europe"))
        got = await h100.message()
        assert got["event"] == "market" and got["data"]["gpu_type"] == "H100" and got["data"]["window"] == "1m"
        assert got["data"]["continent"] == "europe" and got["data"]["max_price_per_gpu"] == 3.25
        frame = await stream.next_event()
        assert frame["event"] == "market" and orjson.loads(frame["data"])["gpu_type"] == "H100"
        assert frame["id"] == got["id"]
        for quiet in (h100, prices_only):
            with pytest.raises(TimeoutError):
                await quiet.message(timeout_s=0.3)
        with pytest.raises(TimeoutError):
            await offers_stream.next_event(timeout_s=0.3)  # the offers' stream carries no windows
