"""A small round-robin TCP load balancer on loopback, in front of the soak's gateways.

Each connection goes to the next backend in turn among those whose ``/ready`` answered 200 at
the last health check (every ``CHECK_S``), as a load balancer or a Kubernetes Service does; a
backend that refuses the connection is skipped for that connection too. Bytes are copied both
ways until either side closes (then both are closed), so HTTP keep-alive, SSE and WebSocket
connections stay on the backend they were given.

    .venv/bin/python bench/balancer.py --port PORT --backends 127.0.0.1:8001,127.0.0.1:8002
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal

CHECK_S = 0.5
"""How often each backend's readiness is asked."""


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


class Balancer:
    """Round-robin over ``backends`` (host, port); ``serve`` until ``stop`` is set."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.ready = set(backends)
        self._turn = itertools.cycle(range(len(backends)))

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        first = next(self._turn)
        for offset in range(len(self.backends)):
            backend = self.backends[(first + offset) % len(self.backends)]
            if backend in self.ready:
                with contextlib.suppress(OSError):
                    return await asyncio.open_connection(*backend)
        return None

    async def check(self, stop: asyncio.Event) -> None:
        """Keep ``ready`` to the backends whose ``GET /ready`` answers 200."""
        while not stop.is_set():
            for backend in self.backends:
                if await _ready(*backend):
                    self.ready.add(backend)
                else:
                    self.ready.discard(backend)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_S)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = await self._connect()
        if backend is None:  # no backend up: the client sees its connection closed, as it would
            client_writer.close()
            return
        backend_reader, backend_writer = backend
        copies = {
            asyncio.ensure_future(_copy(client_reader, backend_writer)),
            asyncio.ensure_future(_copy(backend_reader, client_writer)),
        }
        try:
            await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for copy in copies:
                copy.cancel()
            for writer in (backend_writer, client_writer):
                writer.close()

    async def serve(self, port: int, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        async with server:
            await self.check(stop)


async def _ready(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /ready HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status = await asyncio.wait_for(reader.readline(), 2)
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    backends = []
    for backend in args.backends.split(","):
        host, _, port = backend.rpartition(":")
        backends.append((host, int(port)))
    await Balancer(backends).serve(args.port, stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the loopback port to listen on")
    parser.add_argument("--backends", required=True, help="HOST:PORT of each backend, comma-separated")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
