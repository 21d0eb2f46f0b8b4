"""The soak's clients, each kind in a process of its own, until SIGTERM; each writes what it saw
to a JSON-lines file the soak reads afterwards.

``reads``: list reads at a steady rate, alternating between the gateways as a load balancer
would, and trying the other instance when one refuses the connection (it is restarting); one
line per request: ``{"t", "path", "status", "ms", "gateway", "unwell"}``, status 0 when no instance
took it, ``unwell`` the providers a 200 answer flagged (not healthy, or stale).

``sse``: subscribers to ``/api/v2/providers/stream``. A pinned subscriber stays on its gateway
(reconnecting to it when it comes back), so what it receives is what that instance consumed; a
roaming one moves to the other instance, resuming with ``Last-Event-ID``, as a client behind a
load balancer does. One line per event, ``gap`` and (re)connection.

``ws``: subscribers to the ``price_updates`` channel of ``/ws/providers/``, pinned or roaming as
above. A WebSocket does not resume: a client that lost its connection knows it may have missed
what was sent meanwhile, and its ``connected`` line (written when the subscription is confirmed)
closes that window. ``--channels alerts`` (an Enterprise user's key) follows the user's own
alert rules firing instead: one line per ``alert`` event.

``receiver``: a webhook receiver on loopback over https (the certificate ``--cert``), answering
by path: ``/ok`` 200 (but 503 to every fifth request, which is tried again), ``/gone`` 410 (a
final refusal), ``/down`` 503 (tried until the retry window is spent, then dead-lettered). One
line per request: ``{"t", "path", "status", "delivery_id", "signature", "body"}``.

    .venv/bin/python bench/soak_load.py reads --gateways URL,URL --out FILE [--key KEY] [--rate N]
    .venv/bin/python bench/soak_load.py sse --gateways URL,URL --out FILE --key KEY [--pin N]
    .venv/bin/python bench/soak_load.py ws --gateways URL,URL --out FILE --key KEY [--pin N] [--channels C,C]
    .venv/bin/python bench/soak_load.py receiver --port N --cert PEM --cert-key PEM --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
from aiohttp import web

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
    status, used, unwell = 0, "", []
    for attempt in range(len(gateways)):  # the next instance when this one refuses the connection
        used = gateways[(number + attempt) % len(gateways)]
        try:
            async with session.get(used + path) as answer:
                body = await answer.read()
                status = answer.status
            if status == 200:
                unwell = [
                    p["name"] for p in orjson.loads(body).get("providers", []) if p["stale"] or p["status"] != "healthy"
                ]
            break
        except aiohttp.ClientConnectionError:
            continue
        except TimeoutError:
            break
    out.write(path=path, status=status, ms=(time.monotonic() - began) * 1000, gateway=used, unwell=unwell)


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


async def websocket(
    gateways: list[str], key: str, pin: int | None, out: Lines, stop: asyncio.Event, channels: list[str]
) -> None:
    """One WebSocket subscriber to ``channels``, reconnecting until ``stop``."""
    turn = pin or 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)) as session:
        while not stop.is_set():
            gateway = gateways[turn % len(gateways)]
            url = "ws" + gateway.removeprefix("http") + "/ws/providers/"
            try:
                async with session.ws_connect(url, params={"token": key}, heartbeat=20) as socket:
                    await socket.send_json({"type": "subscribe", "channels": channels})
                    await _messages(socket, gateway, out, stop)
            except (aiohttp.ClientError, TimeoutError) as exc:
                out.write(kind="disconnected", gateway=gateway, error=type(exc).__name__)
            if not stop.is_set():
                await asyncio.sleep(0.5)
                if pin is None:
                    turn += 1


async def _messages(socket: aiohttp.ClientWebSocketResponse, gateway: str, out: Lines, stop: asyncio.Event) -> None:
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            receiving = asyncio.ensure_future(socket.receive())
            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done():
                receiving.cancel()
                return
            message = receiving.result()
            if message.type != aiohttp.WSMsgType.TEXT:
                out.write(kind="disconnected", gateway=gateway, error=f"closed {socket.close_code}")
                return
            payload = orjson.loads(message.data)
            if payload["type"] == "subscribed":
                out.write(kind="connected", gateway=gateway, status=200)
            elif payload["type"] == "gap":
                out.write(kind="gap", gateway=gateway, dropped=payload["dropped"])
            elif payload["type"] == "error":
                out.write(kind="error", gateway=gateway, message=payload["message"])
            elif payload["type"] == "event" and payload["event"] == "alert":
                data = payload["data"]
                out.write(
                    kind="alert",
                    gateway=gateway,
                    alert_id=data.get("alert_id"),
                    offer_id=data.get("offer_id"),
                    at=data["at"],
                )
            elif payload["type"] == "event" and payload["event"] == "price_update":
                data = payload["data"]
                out.write(
                    kind="price_update",
                    gateway=gateway,
                    id=payload["id"],
                    offer_id=data["offer_id"],
                    old=str(data["previous_price_per_hour"]),
                    new=str(data["price_per_hour"]),
                )
    finally:
        stopping.cancel()


RECEIVER_ANSWERS = {"ok": 200, "gone": 410, "down": 503}
FLAKY_EVERY = 5
"""``/ok`` answers 503 to every this many-th request."""


async def receive(port: int, cert: str, cert_key: str, out: Lines, stop: asyncio.Event) -> None:
    """A webhook receiver over https until ``stop``."""
    served: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path.strip("/")
        served[path] += 1
        status = RECEIVER_ANSWERS.get(path, 404)
        if path == "ok" and served[path] % FLAKY_EVERY == 0:
            status = 503
        out.write(
            path=path,
            status=status,
            delivery_id=request.headers.get("X-GPUBROKER-Delivery"),
            signature=request.headers.get("X-GPUBROKER-Signature"),
            body=body.decode("utf-8", "replace"),
        )
        return web.Response(status=status)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, cert_key)
    app = web.Application()
    app.router.add_post("/{path:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    out = Lines(Path(args.out))
    gateways = args.gateways.split(",") if args.gateways else []
    flusher = asyncio.create_task(out.flushing())
    try:
        if args.kind == "reads":
            await reads(gateways, args.key, args.rate, out, stop)
        elif args.kind == "receiver":
            await receive(args.port, args.cert, args.cert_key, out, stop)
        else:
            if not args.key:
                raise SystemExit(f"{args.kind} needs --key: the streams are for plans that may query")
            if args.kind == "sse":
                await subscribe(gateways, args.key, args.pin, out, stop)
            else:
                await websocket(gateways, args.key, args.pin, out, stop, args.channels.split(","))
    finally:
        flusher.cancel()
        out.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("reads", "sse", "ws", "receiver"))
    parser.add_argument("--gateways", help="base URLs, comma-separated (all but receiver)")
    parser.add_argument("--out", required=True, help="the JSON-lines file to append to")
    parser.add_argument("--key", help="an API key (reads: anonymous without; sse, ws: a Pro plan's or above)")
    parser.add_argument("--rate", type=float, default=5.0, help="requests a second (reads)")
    parser.add_argument("--pin", type=int, help="stay on this gateway (sse, ws; index into --gateways)")
    parser.add_argument("--channels", default="price_updates", help="what to subscribe to (ws; comma-separated)")
    parser.add_argument("--port", type=int, help="the loopback port to listen on (receiver)")
    parser.add_argument("--cert", help="the certificate to serve, PEM (receiver)")
    parser.add_argument("--cert-key", help="its private key, PEM (receiver)")
    args = parser.parse_args()
    if args.kind == "receiver" and not (args.port and args.cert and args.cert_key):
        parser.error("receiver needs --port, --cert and --cert-key")
    if args.kind != "receiver" and not args.gateways:
        parser.error(f"{args.kind} needs --gateways")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
