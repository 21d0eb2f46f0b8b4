"""The least any Python ASGI application can do to fan a change out: the baseline for WebSocket
fan-out.

Accepts every WebSocket, greets it with ``{"type": "connection_established"}`` and answers any
``subscribe`` with ``subscribed`` (the handshake the gateway's ``/ws/providers/`` has), and on
``POST /_bench/reprice`` sends one frame to every subscribed connection, all the ``send`` calls
at once from the request's coroutine (``asyncio.gather``: at 1,000 and 10,000 connections it
took about half the time of awaiting them one after the other), then answers with how many it
sent (``GET`` answers how many are subscribed). The frame has the shape of the gateway's
``price_update`` event, ``"at"`` (when the fan-out starts) included, padded to
``BENCH_FRAME_BYTES`` (default 1000; ``bench/fanout.py`` passes the size of the gateway's
frames). ``bench/fanout.py`` runs it under granian next to the gateway, so the table shows how
much of the fan-out time is the server's and the client's, and how much the gateway's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

REPRICE_PATH = "/_bench/reprice"
FRAME_BYTES = int(os.environ.get("BENCH_FRAME_BYTES", "1000"))
GREETING = {"type": "websocket.send", "text": '{"type":"connection_established"}'}

subscribers: set[Send] = set()
sent = 0


def frame(number: int) -> str:
    """A price_update event of about ``FRAME_BYTES`` characters, stamped now."""
    data = {
        "type": "price_update",
        "offer_id": f"bench-{number}",
        "provider": "bench",
        "gpu_type": "H100",
        "region": "us-east",
        "price_per_hour": 2.5,
        "previous_price_per_hour": 2.49,
        "availability": "available",
        "offer": {"padding": ""},
        "at": datetime.now(UTC).isoformat(),
    }
    text = orjson.dumps({"type": "event", "id": f"o0.{number}", "event": "price_update", "data": data})
    padding = max(0, FRAME_BYTES - len(text))
    return text.decode().replace('"padding":""', f'"padding":"{"x" * padding}"', 1)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await websocket(receive, send)
    elif scope["type"] == "http":
        await http(scope, send)


async def websocket(receive: Receive, send: Send) -> None:
    try:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send(GREETING)
            elif kind == "websocket.receive":
                request = orjson.loads(message.get("text") or message.get("bytes") or b"{}")
                if request.get("type") == "subscribe":
                    subscribers.add(send)
                    channels = request.get("channels", [])
                    await send(
                        {
                            "type": "websocket.send",
                            "text": orjson.dumps({"type": "subscribed", "channels": channels}).decode(),
                        }
                    )
            elif kind == "websocket.disconnect":
                return
    finally:
        subscribers.discard(send)


async def http(scope: Scope, send: Send) -> None:
    global sent
    if scope["path"] != REPRICE_PATH:
        await answer(send, 404, b'{"detail": "not found"}')
        return
    if scope["method"] != "POST":
        await answer(send, 200, orjson.dumps({"live": True, "subscribers": len(subscribers), "repriced": sent}))
        return
    sent += 1
    published_at = time.time()
    message = {"type": "websocket.send", "text": frame(sent)}
    targets = list(subscribers)
    outcomes = await asyncio.gather(*(target(message) for target in targets), return_exceptions=True)
    delivered = 0
    for target, outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, BaseException):  # a connection that has just gone
            subscribers.discard(target)
        else:
            delivered += 1
    body = {"offer_id": f"bench-{sent}", "published_at": published_at, "sent": delivered}
    await answer(send, 200, orjson.dumps(body))


async def answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
