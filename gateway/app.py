"""The ASGI application: Django for HTTP, Channels for ``/ws/providers/``, plus the lifespan
that starts the gateway runtime.

Django does not handle ASGI lifespan events, so this thin wrapper does: on startup it starts
the runtime (bus consumer, cache and, embedded, the workers) and on shutdown it drains them.
Every request passes the guard (``identity/guard.py``: authentication, permissions, rate
limits, security headers); repeated GETs are then answered from the fast path
(``fastpath.py``) before Django is involved.
``gpubroker.gateway.asgi:application`` is the production entry point; ``gpubroker up`` builds
its own with the embedded workers switched on.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gpubroker.gateway.identity.guard import add_headers

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

log = logging.getLogger(__name__)

GC_THRESHOLDS = (50_000, 50, 100)
"""The collector's thresholds in the process that serves the gateway. With Python's defaults
(700, 10, 10) and thousands of open connections, full collections over all of their objects
stall the fan-out of a change for hundreds of milliseconds; with these, p99 at 10,000 WebSocket
subscribers fell from 690 to 290 ms, that of a bare broadcaster (bench/fanout.py). Garbage in
reference cycles lives longer, so nothing may rely on the collector to release a resource
(connections, files and sockets are closed explicitly). Set when serving, not in the runtime:
a test process, which builds a runtime and its threads per test, keeps Python's defaults."""

SOCKET_PATH = "/ws/providers"


class GatewayApplication:
    def __init__(self, *, run_workers: bool = False) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker.gateway.settings")
        import django
        from django.core.handlers.asgi import ASGIHandler

        django.setup(set_prefix=False)
        from gpubroker.gateway.realtime.sockets import ProvidersConsumer

        self._django = ASGIHandler()
        self._sockets = ProvidersConsumer.as_asgi()
        self._run_workers = run_workers
        self.runtime: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self.runtime is not None:
            await self.runtime.guard(scope, receive, send, self._serve)
        else:
            await self._django(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What the guard lets through: a repeated GET from the fast path, the rest to Django."""
        if scope["type"] == "http" and scope["method"] == "GET" and await self.runtime.fastpath.serve(scope, send):
            return
        if scope["type"] == "websocket":
            if scope["path"].rstrip("/") == SOCKET_PATH:
                await self._sockets(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 4404, "reason": "no such WebSocket endpoint"})
            return
        await self._django(scope, receive, add_headers(scope, send))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        from gpubroker.gateway.runtime import GatewayRuntime
        from gpubroker.gateway.settings import GPUBROKER

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    gc.set_threshold(*GC_THRESHOLDS)
                    self.runtime = GatewayRuntime(GPUBROKER, run_workers=self._run_workers)
                    await self.runtime.start()
                except Exception as exc:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.runtime is not None:
                    await self.runtime.stop()
                log.info("gateway stopped")
                await send({"type": "lifespan.shutdown.complete"})
                return
