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

from opentelemetry.trace import SpanKind

from gpubroker.core import tracing

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

log = logging.getLogger(__name__)
_TRACER = tracing.tracer("gpubroker.gateway.requests")

GC_THRESHOLDS = (50_000, 50, 100)
"""The collector's thresholds in the process that serves the gateway. With Python's defaults
(700, 10, 10) and thousands of open connections, full collections over all of their objects
stall the fan-out of a change for hundreds of milliseconds; with these, p99 at 10,000 WebSocket
subscribers fell from 690 to 290 ms, that of a bare broadcaster (bench/fanout.py). Garbage in
reference cycles lives longer, so nothing may rely on the collector to release a resource
(connections, files and sockets are closed explicitly). Set when serving, not in the runtime:
a test process, which builds a runtime and its threads per test, keeps Python's defaults."""


class GatewayApplication:
    def __init__(self, *, run_workers: bool = False) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker.gateway.settings")
        import django
        from django.core.handlers.asgi import ASGIHandler

        django.setup(set_prefix=False)
        from gpubroker.gateway.identity.guard import add_headers  # the gateway's modules need Django set up
        from gpubroker.gateway.identity.routes import socket_pattern
        from gpubroker.gateway.realtime.sockets import WEBSOCKETS

        self._add_headers = add_headers
        self._socket_pattern = socket_pattern
        self._django = ASGIHandler()
        self._sockets = {path.strip("/"): consumer.as_asgi() for path, consumer in WEBSOCKETS.items()}
        self._run_workers = run_workers
        self.runtime: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self.runtime is not None:
            await self.runtime.guard(scope, receive, send, self._serve)
        else:
            await _not_started(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What the guard lets through, in a span continuing the caller's trace when spans are
        exported (``core.tracing``)."""
        if not tracing.exporting():
            return await self._dispatch(scope, receive, send)
        parent = tracing.context_from(scope["headers"])
        name = f"{scope.get('method', 'WEBSOCKET')} {scope['path']}"
        with _TRACER.start_as_current_span(name, context=parent, kind=SpanKind.SERVER):
            await self._dispatch(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A repeated GET from the fast path, the rest to Django."""
        if scope["type"] == "http" and scope["method"] == "GET":
            self.runtime.queries.count(scope["path"], scope["query_string"])
            if await self.runtime.fastpath.serve(scope, send):
                return
        if scope["type"] == "websocket":  # the guard has refused unknown paths
            pattern = self._socket_pattern(scope["path"], self._sockets)
            assert pattern is not None, "the guard lets known WebSocket paths through only"
            await self._sockets[pattern](scope, receive, send)
            return
        await self._django(scope, receive, self._add_headers(scope, send))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        from gpubroker.gateway.runtime import GatewayRuntime
        from gpubroker.gateway.settings import GPUBROKER

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    gc.set_threshold(*GC_THRESHOLDS)
                    runtime = GatewayRuntime(GPUBROKER, run_workers=self._run_workers)
                    await runtime.start()
                    self.runtime = runtime
                except Exception as exc:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                runtime, self.runtime = self.runtime, None
                if runtime is not None:
                    await runtime.stop()
                log.info("gateway stopped")
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _not_started(scope: Scope, receive: Receive, send: Send) -> None:
    """Nothing passes without the guard: before the runtime has started (or after it stopped),
    HTTP answers 503 and a WebSocket is closed with 4503."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4503, "reason": "the gateway is not started"})
        return
    body = b'{"detail":[{"field":null,"message":"the gateway is starting or stopping; retry shortly"}]}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": body})
