"""A webhook receiver for the tests and the benchmark: an aiohttp server in a thread that records
every POST and answers each path with the statuses it is given (the last one repeats)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    delivery_id: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


class Receiver:
    def __init__(self, host: str = "127.0.0.2") -> None:
        self.host = host
        self.port = 0
        self.received: list[Received] = []
        self.statuses: dict[str, list[int]] = {}
        self._served: dict[str, int] = defaultdict(int)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        script = self.statuses.get(path, [200])
        status = script[min(self._served[path], len(script) - 1)]
        self._served[path] += 1
        delivery_id = request.headers.get("X-GPUBROKER-Delivery", "")
        self.received.append(Received(path, delivery_id, dict(request.headers), body, time.time(), status))
        return web.Response(status=status)

    def at(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]


def signature_valid(secret: str, received: Received) -> bool:
    """``X-GPUBROKER-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    parts = dict(part.split("=", 1) for part in received.headers["X-GPUBROKER-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])
