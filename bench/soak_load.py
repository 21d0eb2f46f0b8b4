"""The soak's clients, each kind in a process of its own, until SIGTERM; each writes what it saw
to a JSON-lines file the soak reads afterwards.

``reads``: list reads at a steady rate, alternating between the gateways as a load balancer
would, and trying the other instance when one refuses the connection (it is restarting); one
line per request: ``{"t", "path", "status", "ms", "gateway"}``, status 0 when no instance took it.

``sse``: subscribers to ``/api/v2/providers/stream``. A pinned subscriber stays on its gateway
(reconnecting to it when it comes back), so what it receives is what that instance consumed; a
roaming one moves to the other instance, resuming with ``Last-Event-ID``, as a client behind a
load balancer does. One line per event, ``gap`` and (re)connection.

    .venv/bin/python bench/soak_load.py reads --gateways URL,URL --out FILE [--key KEY] [--rate N]
    .venv/bin/python bench/soak_load.py sse --gateways URL,URL --out FILE --key KEY [--pin N]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

READ_PATHS = (
    "/api/v2/providers?limit=20",
    "/api/v2/providers?limit=50&sort=price",
    "/api/v2/providers?limit=20&sort=-price",
    "/api/v2/providers?limit=20&gpu=H100",
)
TIMEOUT = aiohttp.ClientTimeout(total=15)


class Lines:
    """JSON lines appended to a file, flushed each second (``flushing``) so that the soak can
    follow them and a killed client loses little."""

    def __init__(self, path: Path) -> None:
        self._file: IO[bytes] = path.open("ab")

    def write(self, **fields: Any) -> None:
        self._file.write(orjson.dumps({"t": time.time(), **fields}) + b"\n")

    async def flushing(self) -> None:
        while True:
            await asyncio.sleep(1)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


async def reads(gateways: list[str], key: str | None, rate: float, out: Lines, stop: asyncio.Event) -> None:
    headers = {"X-API-Key": key} if key else {}
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(timeout=TIMEOUT, headers=headers) as session:
        sent, started = 0, time.monotonic()
        while not stop.is_set():
            while sent < (time.monotonic() - started) * rate:
                task = asyncio.create_task(_read(session, gateways, sent, out))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.sleep(0.02)
        await asyncio.gather(*pending)


async def _read(session: aiohttp.ClientSession, gateways: list[str], number: int, out: Lines) -> None:
    path = READ_PATHS[number % len(READ_PATHS)]
    began = time.monotonic()
    status, used = 0, ""
    for attempt in range(len(gateways)):  # the next instance when this one refuses the connection
        used = gateways[(number + attempt) % len(gateways)]
        try:
            async with session.get(used + path) as answer:
                await answer.read()
                status = answer.status
            break
        except aiohttp.ClientConnectionError:
            continue
        except TimeoutError:
            break
    out.write(path=path, status=status, ms=(time.monotonic() - began) * 1000, gateway=used)


async def subscribe(gateways: list[str], key: str, pin: int | None, out: Lines, stop: asyncio.Event) -> None:
    """One subscriber, reconnecting until ``stop``; ``pin``: the index of the only gateway it uses."""
    last_id: str | None = None
    turn = pin or 0
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, headers={"X-API-Key": key}) as session:
        while not stop.is_set():
            gateway = gateways[turn % len(gateways)]
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with session.get(gateway + "/api/v2/providers/stream", headers=headers) as answer:
                    out.write(kind="connected", gateway=gateway, status=answer.status, resumed=last_id)
                    if answer.status == 200:
                        last_id = await _events(answer, gateway, out, stop, last_id)
            except (aiohttp.ClientError, TimeoutError) as exc:
                out.write(kind="disconnected", gateway=gateway, error=type(exc).__name__)
            if not stop.is_set():
                await asyncio.sleep(0.5)
                if pin is None:
                    turn += 1  # a load balancer sends the reconnection to the other instance


async def _events(
    answer: aiohttp.ClientResponse, gateway: str, out: Lines, stop: asyncio.Event, last_id: str | None
) -> str | None:
    kind, event_id, data = "message", None, b""
    reading = asyncio.ensure_future(answer.content.readline())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                return last_id
            line = reading.result()
            if not line:
                out.write(kind="disconnected", gateway=gateway, error="closed")
                return last_id
            reading = asyncio.ensure_future(answer.content.readline())
            line = line.rstrip(b"\r\n")
            if line.startswith(b"id: "):
                event_id = line[4:].decode()
            elif line.startswith(b"event: "):
                kind = line[7:].decode()
            elif line.startswith(b"data: "):
                data += line[6:]
            elif not line and data:
                payload = orjson.loads(data)
                if kind == "gap":
                    out.write(kind="gap", gateway=gateway, **payload)
                elif kind == "price_update":
                    out.write(
                        kind=kind,
                        gateway=gateway,
                        id=event_id,
                        offer_id=payload["offer_id"],
                        old=str(payload["previous_price_per_hour"]),
                        new=str(payload["price_per_hour"]),
                    )
                last_id = event_id or last_id
                kind, event_id, data = "message", None, b""
    finally:
        reading.cancel()
        stopping.cancel()


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    out = Lines(Path(args.out))
    gateways = args.gateways.split(",")
    flusher = asyncio.create_task(out.flushing())
    try:
        if args.kind == "reads":
            await reads(gateways, args.key, args.rate, out, stop)
        else:
            if not args.key:
                raise SystemExit("sse needs --key: the stream is for plans that may query")
            await subscribe(gateways, args.key, args.pin, out, stop)
    finally:
        flusher.cancel()
        out.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("reads", "sse"))
    parser.add_argument("--gateways", required=True, help="base URLs, comma-separated")
    parser.add_argument("--out", required=True, help="the JSON-lines file to append to")
    parser.add_argument("--key", help="an API key (reads: anonymous without; sse: a Pro plan's or above)")
    parser.add_argument("--rate", type=float, default=5.0, help="requests a second (reads)")
    parser.add_argument("--pin", type=int, help="stay on this gateway (sse; index into --gateways)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
