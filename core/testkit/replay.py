"""A local HTTP server that replays a provider's recorded payloads at the provider's real paths.

Tests point a worker's base URL at it. It runs in its own thread with its own event loop, so
sync tests, async tests and worker subprocesses can all use it. Faults can be injected to see
that a plugin turns each into a typed error: added latency, error statuses, hangs longer than
the client's timeout and malformed bodies. Every request received is kept for assertions
(for example, that the credential was sent where the provider expects it). With an
``emulator`` (``gpubroker.core.testkit.emulator``) it also rents: rental requests are answered
by a stateful emulator of the provider, everything else from the recordings.

Run one by hand with ``python -m gpubroker.core.testkit.replay PLUGIN_MODULE [--port N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.resources
import threading
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any

import orjson
from aiohttp import web

from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.emulator import EmulatedRequest, Emulator


@dataclass
class Faults:
    """What to do instead of, or before, answering. ``every`` applies a fault to every N-th
    request; ``ratio`` (0-1) to that share of requests, spread evenly and deterministically."""

    latency_s: float = 0.0
    status: int | None = None
    hang: bool = False
    malformed: bool = False
    every: int = 1
    ratio: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    echo: bool = False
    """Send the whole request (URL, headers, body) back in the error body, as careless APIs do."""


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class ReplayServer:
    def __init__(
        self,
        recordings: Recordings | Traversable,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        emulator: Emulator | None = None,
    ) -> None:
        self.recordings = recordings if isinstance(recordings, Recordings) else Recordings(recordings)
        self.emulator = emulator
        self.scenario = "default"
        self.faults = Faults()
        self.requests: list[ReceivedRequest] = []
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._count = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def __enter__(self) -> ReplayServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="replay-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("replay server did not start")

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(self._runner), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _shutdown(self, runner: web.AppRunner) -> None:
        """Stop serving, and end the handlers still waiting (a hang, an answer held back)."""
        await runner.cleanup()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def reset(self) -> None:
        self.scenario, self.faults, self.requests, self._count = "default", Faults(), [], 0

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self._host, self._port)
        self._loop.run_until_complete(site.start())
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            ReceivedRequest(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        self._count += 1
        faults = self.faults
        if faults.ratio is not None:
            faulty = int(self._count * faults.ratio) > int((self._count - 1) * faults.ratio)
        else:
            faulty = self._count % max(faults.every, 1) == 0
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if faulty and faults.hang:
            await asyncio.sleep(3600)
        if faulty and faults.status is not None:
            text = f"injected {faults.status}"
            if faults.echo:
                text += f" for {request.url} {dict(request.headers)} {body.decode('utf-8', 'replace')}"
            return web.Response(status=faults.status, text=text, headers=faults.headers)
        json_body: Any = None
        if body:
            try:
                json_body = orjson.loads(body)
            except orjson.JSONDecodeError:
                json_body = None
        if self.emulator is not None:
            emulated = await self.emulator.answer(
                EmulatedRequest(request.method, request.path, dict(request.query), dict(request.headers), json_body)
            )
            if emulated is not None:
                payload = emulated.body if isinstance(emulated.body, bytes) else orjson.dumps(emulated.body)
                return web.Response(status=emulated.status, body=payload, headers=emulated.headers)
        exchange = self.recordings.find(request.method, request.path, dict(request.query), json_body, self.scenario)
        if exchange is None:
            return web.json_response({"error": "no recording matches this request"}, status=404)
        recorded = exchange.response
        payload = recorded.body
        if faulty and faults.malformed:
            payload = payload[: len(payload) // 2] + b"\x00<html>garbage"
        return web.Response(status=recorded.status, body=payload, headers=recorded.headers)


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay a provider plugin's recorded payloads over HTTP.")
    parser.add_argument("plugin_module", help="the plugin's module, e.g. gpubroker_vastai")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--scenario", default="default")
    args = parser.parse_args()
    module = importlib.import_module(args.plugin_module)
    folder = importlib.resources.files(module).joinpath("recordings")
    server = ReplayServer(folder, port=args.port)
    server.scenario = args.scenario
    server.start()
    print(f"replaying {server.recordings.provider} ({args.scenario}) at {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
