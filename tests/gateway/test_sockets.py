"""The WebSocket API: subscriptions, filtering by channel, ping, and refusing bad messages."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from gpubroker.gateway.realtime.hub import SUBSCRIBER_QUEUE
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import asgi_client
from tests.gateway.test_stream import A100, H100, burst, live, repriced

pytestmark = pytest.mark.django_db(transaction=True)


class Socket:
    def __init__(
        self, runtime: GatewayRuntime, path: str = "/ws/providers/", headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        self.app = asgi_client(runtime).app
        self.path = path
        self.headers = list(headers)
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __aenter__(self) -> Socket:
        await self.incoming.put({"type": "websocket.connect"})
        scope = {
            "type": "websocket",
            "path": self.path,
            "query_string": b"",
            "headers": self.headers,
            "client": ("203.0.113.9", 1),
            "subprotocols": [],
        }
        self.task = asyncio.create_task(self.app(scope, self.incoming.get, self.outgoing.put))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)

    async def message(self, timeout_s: float = 5) -> dict[str, Any]:
        sent = await asyncio.wait_for(self.outgoing.get(), timeout_s)
        return sent if sent["type"] != "websocket.send" else orjson.loads(sent["text"])

    async def connected(self) -> Socket:
        assert (await self.message())["type"] == "websocket.accept"
        assert (await self.message())["type"] == "connection_established"
        return self

    async def say(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.incoming.put({"type": "websocket.receive", "text": orjson.dumps(message).decode()})
        return await self.message()


async def test_subscribers_get_only_their_channels(runtime: GatewayRuntime, publish) -> None:  # type: ignore[no-untyped-def]
    await publish([H100, A100])
    await live(runtime)
    async with Socket(runtime) as socket:
        assert (await socket.message())["type"] == "websocket.accept"
        assert (await socket.message())["type"] == "connection_established"
        assert await socket.say({"type": "ping"}) == {"type": "pong"}
        subscribed = await socket.say({"type": "subscribe", "channels": ["price_updates", "gpu:h100"]})
        assert subscribed == {"type": "subscribed", "channels": ["price_updates", "gpu:h100"]}
        await publish([repriced(A100, "1.50"), repriced(H100, "2.50"), repriced(A100, "1.60"), repriced(H100, "2.60")])
        events = [await socket.message() for _ in range(2)]
        assert [e["data"]["price_per_hour"] for e in events] == [2.5, 2.6]
        assert all(
            e["type"] == "event" and e["event"] == "price_update" and e["data"]["gpu_type"] == "H100" for e in events
        )
        assert (await socket.say({"type": "subscribe", "channels": ["weather"]}))["type"] == "error"
        assert (await socket.say({"type": "dance"}))["type"] == "error"
        assert (await socket.say({"type": "unsubscribe", "channels": ["gpu:H100"]}))["type"] == "unsubscribed"
        await publish([repriced(A100, "1.70")])
        assert (await socket.message())["data"]["gpu_type"] == "A100"  # price_updates alone: every GPU


async def test_unknown_socket_paths_are_closed(runtime: GatewayRuntime) -> None:
    async with Socket(runtime, "/ws/elsewhere") as socket:
        assert (await socket.message())["type"] == "websocket.accept"  # so the client sees the code
        closed = await socket.message()
    assert closed["type"] == "websocket.close" and closed["code"] == 4404


async def test_a_draining_instance_closes_its_sockets_with_service_restart(runtime: GatewayRuntime, publish) -> None:  # type: ignore[no-untyped-def]
    """Code 1012: the client reconnects, to another instance, and subscribes again."""
    await publish([H100])
    await live(runtime)
    async with Socket(runtime) as socket:
        await socket.connected()
        await socket.say({"type": "subscribe", "channels": ["price_updates"]})
        await publish([repriced(H100, "2.50")])
        runtime.hub.close()
        event, closed = await socket.message(), await socket.message()
    assert event["type"] == "event" and event["data"]["price_per_hour"] == 2.5
    assert closed["type"] == "websocket.close" and closed["code"] == 1012


async def test_a_burst_larger_than_a_subscribers_queue_reaches_it_whole(runtime: GatewayRuntime, publish) -> None:  # type: ignore[no-untyped-def]
    await publish([H100])
    await live(runtime)
    async with Socket(runtime) as socket:
        await socket.connected()
        assert (await socket.say({"type": "subscribe", "channels": ["price_updates"]}))["type"] == "subscribed"
        await publish(burst(SUBSCRIBER_QUEUE + 500))
        received = [await socket.message() for _ in range(SUBSCRIBER_QUEUE + 500)]
    assert {(message["type"], message.get("event")) for message in received} == {("event", "price_update")}
    assert received[-1]["data"]["price_per_hour"] == 3.5
