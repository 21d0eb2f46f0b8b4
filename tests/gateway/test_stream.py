"""Server-Sent Events: filtered like the list, resumable with Last-Event-ID, bounded per client."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.realtime.hub import SUBSCRIBER_QUEUE, Event, Hub
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import offer
from tests.gateway.test_identity import make_user, with_key

pytestmark = pytest.mark.django_db(transaction=True)

H100 = offer("vastai", "h", "H100", "2.00")
A100 = offer("vastai", "a", "A100", "1.00")


class EventStream:
    """An SSE client driving the ASGI application, reading events as they are sent."""

    def __init__(
        self,
        runtime: GatewayRuntime,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        path: str = "/api/v2/providers/stream",
    ) -> None:
        from tests.gateway.conftest import asgi_client

        self.app = asgi_client(runtime).app
        self.query, self.headers, self.path = query, headers, path
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self.started = asyncio.Event()
        self.gone = asyncio.Event()
        self.status = 0
        self.buffer = b""

    async def __aenter__(self) -> EventStream:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": self.path, "raw_path": self.path.encode(), "query_string": self.query,
            "root_path": "", "headers": self.headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if requests:
                return requests.pop()
            await self.gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.started.set()
            elif message.get("body"):
                await self.chunks.put(message["body"])

        self.task = asyncio.create_task(self.app(scope, receive, send))
        await asyncio.wait_for(self.started.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.gone.set()
        await asyncio.wait_for(self.task, 5)

    async def next_event(self, timeout_s: float = 5.0) -> dict[str, str]:
        while b"\n\n" not in self.buffer or self.buffer.startswith((b":", b"retry")):
            if b"\n\n" in self.buffer:  # a comment or the retry hint: skip it
                self.buffer = self.buffer.split(b"\n\n", 1)[1]
                continue
            self.buffer += await asyncio.wait_for(self.chunks.get(), timeout_s)
        frame, self.buffer = self.buffer.split(b"\n\n", 1)
        return dict(line.decode().split(": ", 1) for line in frame.split(b"\n"))  # type: ignore[misc]


async def live(runtime: GatewayRuntime) -> None:
    for _ in range(200):
        if runtime.changes.live:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway never caught up")


def repriced(item: Any, price: str) -> Any:
    return item.model_copy(update={"price_per_hour": Decimal(price)})


async def test_stream_delivers_matching_changes_and_resumes_after_a_reconnect(runtime: GatewayRuntime, publish) -> None:  # type: ignore[no-untyped-def]
    await publish([H100, A100])
    await live(runtime)
    _, key = await make_user(Plan.PRO)
    async with EventStream(runtime, b"gpu=H100", with_key(key)) as stream:
        assert stream.status == 200
        await publish([repriced(A100, "1.10"), repriced(H100, "2.10")])
        first = await stream.next_event()
        await publish([repriced(A100, "1.20"), repriced(H100, "2.20")])
        second = await stream.next_event()
    for event, price in ((first, 2.1), (second, 2.2)):  # never the A100's
        data = orjson.loads(event["data"])
        assert event["event"] == "price_update" and data["offer_id"] == H100.id and data["price_per_hour"] == price

    await publish([repriced(H100, "2.30"), repriced(A100, "1.30"), repriced(H100, "2.40")])  # while away
    resume = [*with_key(key), (b"last-event-id", second["id"].encode())]
    async with EventStream(runtime, b"gpu=H100", resume) as stream:
        missed = [orjson.loads((await stream.next_event())["data"])["price_per_hour"] for _ in range(2)]
    assert missed == [2.3, 2.4]


async def test_stream_refuses_bad_input_and_plans_without_it(runtime: GatewayRuntime) -> None:
    _, pro = await make_user(Plan.PRO)
    _, free = await make_user(Plan.FREE)
    async with EventStream(runtime, b"gpu=Voodoo", with_key(pro)) as stream:
        assert stream.status == 422
    async with EventStream(runtime, b"", [*with_key(pro), (b"last-event-id", b"yesterday")]) as stream:
        assert stream.status == 422
    async with EventStream(runtime, b"", with_key(free)) as stream:
        assert stream.status == 403


async def test_a_slow_subscriber_loses_its_oldest_events_and_is_told() -> None:
    hub = Hub(retained=10)
    subscription = hub.subscribe(lambda event: True, size=3)
    for offset in range(5):
        hub.publish(Event("price_update", b"{}", "o0", offset, hub.next_id("o0", offset), "vastai"))
    events, dropped = await subscription.next_batch()
    assert [e.offset for e in events] == [2, 3, 4] and dropped == 2
    assert [e.offset for e in hub.since({"o0": 2})] == [3, 4]


def burst(count: int) -> list[Any]:
    """``count`` price changes of one offer, published at once: what a broker back after an
    outage hands every gateway (its producers' backlog) in one fetch."""
    return [repriced(H100, f"{2 + n / 1000:.3f}") for n in range(1, count + 1)]


async def test_a_burst_larger_than_a_subscribers_queue_reaches_it_whole(runtime: GatewayRuntime, publish) -> None:  # type: ignore[no-untyped-def]
    """Applied without letting the subscribers run, a burst filled every queue before any could
    send, and each stream announced a gap though its client kept up."""
    await publish([H100])
    await live(runtime)
    _, key = await make_user(Plan.PRO)
    async with EventStream(runtime, b"", with_key(key)) as stream:
        await publish(burst(SUBSCRIBER_QUEUE + 500))
        received = [await stream.next_event() for _ in range(SUBSCRIBER_QUEUE + 500)]
    assert {event["event"] for event in received} == {"price_update"}
    assert orjson.loads(received[-1]["data"])["price_per_hour"] == 3.5


async def test_the_heartbeat_wakes_idle_subscribers_with_an_empty_batch() -> None:
    hub = Hub()
    subscription = hub.subscribe(lambda event: True)
    waiting = asyncio.create_task(subscription.next_batch())
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.heartbeat()
    assert await asyncio.wait_for(waiting, 1) == ([], 0)


async def test_a_price_appearing_or_disappearing_is_not_streamed_as_a_price_change(
    runtime: GatewayRuntime, publish
) -> None:  # type: ignore[no-untyped-def]
    await publish([H100])
    await live(runtime)
    _, key = await make_user(Plan.PRO)
    async with EventStream(runtime, b"gpu=H100", with_key(key)) as stream:
        await publish([H100.model_copy(update={"price_per_hour": None})])  # the provider stops quoting it
        await publish([repriced(H100, "2.70")])  # and quotes it again: nothing to compare with
        await publish([repriced(H100, "2.80")])
        event = await stream.next_event()
    data = orjson.loads(event["data"])
    assert event["event"] == "price_update" and data["previous_price_per_hour"] == 2.7 and data["price_per_hour"] == 2.8


async def test_a_client_resuming_where_this_instance_holds_nothing_is_told_of_the_gap(
    runtime: GatewayRuntime, publish
) -> None:  # type: ignore[no-untyped-def]
    """A client that followed another instance resumes on one that started later: the records
    in between were consumed before this one went live, so it holds no event for them and says so."""
    await live(runtime)
    runtime.changes.live = False  # still consuming the bus's backlog
    await publish([H100, repriced(H100, "2.10"), repriced(H100, "2.20")])
    runtime.changes.live = True
    _, key = await make_user(Plan.PRO)
    elsewhere = "o0.0"  # the client's last event, on an instance that was live then
    async with EventStream(runtime, b"", [*with_key(key), (b"last-event-id", elsewhere.encode())]) as stream:
        gap = await stream.next_event()
        await publish([repriced(H100, "2.30")])
        after = await stream.next_event()
    assert gap["event"] == "gap" and orjson.loads(gap["data"]) == {"dropped": 2}
    assert after["event"] == "price_update"

    async with EventStream(runtime, b"", [*with_key(key), (b"last-event-id", after["id"].encode())]) as stream:
        await publish([repriced(H100, "2.40")])
        assert (await stream.next_event())["event"] == "price_update", "no gap where nothing is missing"


async def test_events_let_go_of_count_as_a_gap_for_those_resuming_before_them() -> None:
    hub = Hub(retained=2)
    for offset in range(4):
        hub.publish(Event("price_update", b"{}", "o0", offset, hub.next_id("o0", offset), "vastai"))
    assert hub.unretained({"o0": 0}) == 1  # offset 1 is gone; 2 and 3 are retained
    assert hub.unretained({"o0": 1}) == 0 and [e.offset for e in hub.since({"o0": 1})] == [2, 3]


async def test_a_draining_instance_ends_its_streams_so_their_clients_resume_elsewhere(
    runtime: GatewayRuntime, publish
) -> None:  # type: ignore[no-untyped-def]
    await publish([H100])
    await live(runtime)
    _, key = await make_user(Plan.PRO)
    async with EventStream(runtime, b"", with_key(key)) as stream:
        await publish([repriced(H100, "2.10")])
        runtime.hub.close()
        event = await stream.next_event()
        await asyncio.wait_for(stream.task, 5)  # the response ended without the client leaving
    assert event["event"] == "price_update"
    async with EventStream(runtime, b"", with_key(key)) as stream:  # opened while draining
        await asyncio.wait_for(stream.task, 5)
    assert runtime.hub.subscribers == 0


async def test_a_stream_opened_before_the_instance_is_live_starts_when_it_is() -> None:
    """The port opens before the backlog is consumed: a client resuming then learns of the records
    this instance consumed without publishing once it knows them all, not before."""
    from django.test import RequestFactory

    from gpubroker.gateway.catalog.filters import OfferFilters
    from gpubroker.gateway.realtime.stream import open_stream

    hub = Hub()
    request = RequestFactory().get("/api/v2/providers/stream", HTTP_LAST_EVENT_ID="o0.3")
    stream = open_stream(request, hub, OfferFilters(), None, None).streaming_content
    assert await anext(stream) == b"retry: 3000\n\n"
    waiting = asyncio.ensure_future(anext(stream))
    for offset in range(4, 9):  # the backlog, consumed before going live
        hub.not_retained("o0", offset)
    await asyncio.sleep(0.05)
    assert not waiting.done()
    hub.live.set()
    assert await asyncio.wait_for(waiting, 1) == b'event: gap\ndata: {"dropped":5}\n\n'
    await stream.aclose()
