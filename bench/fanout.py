"""WebSocket fan-out on one gateway instance: how long a price change takes to reach every one
of N subscribers of ``/ws/providers/``, against a bare ASGI broadcaster, in one run on the same
machine.

    .venv/bin/python bench/fanout.py [--subscribers 1000,5000,10000] [--events 20]
        [--clients 2] [--interval 0.4] [--offers 500]

The gateway is ``bench/seeded_gateway.py`` (the production ASGI application with a synthetic
catalogue of 500 offers, embedded settings, SQLite) under granian as ``gpubroker up`` runs it
(ASGI, one worker, uvloop, granian's defaults otherwise). For each subscriber count a fresh
server is started and N WebSockets are opened to ``/ws/providers/`` from ``--clients`` client
processes (aiohttp; at most ``--open-concurrency`` handshakes in flight in all), each with the
operator's ``X-API-Key`` (authenticated, and the Admin plan is not rate limited); each sends
``{"type": "subscribe", "channels": ["price_updates"]}`` and waits for ``subscribed``. Then
``POST /_bench/reprice`` moves one offer's price by a cent, ``--events`` times: the change is
published on the runtime's bus and takes the real path (ingest, catalogue, ``ChangeFeed``, hub,
each connection's consumer). The next change is made only once every connection has the
previous one (and at least ``--interval`` seconds after it), so fan-outs never overlap. The
latency of a delivery is the client's ``time.time()`` on receipt minus the event's ``"at"``,
stamped when the change event is built (same machine, same wall clock); it includes the
client's own loop, which the baseline shares (the clients do not collect garbage while they
measure). A connection that does not get every event exactly once is a failure the table shows.
Memory per connection is the granian worker's RSS growth (``VmRSS``) from before the first
connection to after the last ``subscribed``, divided by the connections.
Baseline: ``bench/bare_ws.py`` under the same granian settings, which answers the same
handshake and on ``POST /_bench/reprice`` sends one frame of the gateway's event size (with its
own ``"at"``) to every connection directly (all sends at once); the same clients measure it.
The servers take turns for each subscriber count (gateway, then bare), each started afresh.
Goal (SRS NFR-P7): p99 at most 100 ms at 10,000 subscribers.

The script starts its own client processes (``bench/fanout.py --client``); that mode is not
meant to be run by hand. Raises the open-files soft limit to the hard one (10,000 subscribers
need more than 10,000 descriptors in the server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import HOST, ROOT, Server, free_port, gateway_environment, stop, tail

VENV_BIN = Path(sys.executable).parent
GATEWAY = "gateway"
BARE = "bare ASGI broadcaster"
GATEWAY_APP = "bench.seeded_gateway:app"
BARE_APP = "bench.bare_ws:app"
SOCKET_PATH = "/ws/providers/"
REPRICE_PATH = "/_bench/reprice"
OPERATOR_KEY = "bench-fanout-operator"  # the Admin plan: authenticated, and not rate limited
SUBSCRIBE = orjson.dumps({"type": "subscribe", "channels": ["price_updates"]}).decode()
P99_GOAL_MS = 100.0
GOAL_SUBSCRIBERS = 10_000
HANDSHAKE_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 120.0
REPORT_EVERY_S = 0.02
SETTLE_S = 1.0
FD_MARGIN = 200
READ_LIMIT = 1 << 28  # a client's result is one line: every latency it measured

GRANIAN = [
    str(VENV_BIN / "granian"),
    "--interface=asgi",
    "--workers=1",
    "--loop=uvloop",
    "--log-level=warning",
    "--host={host}",
    "--port={port}",
]


@dataclass
class Run:
    server: str
    subscribers: int
    connected: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    complete: int = 0
    """Connections that got every event, exactly once each."""
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    server_subscribers: int = 0
    frame_bytes: int = 0
    missed_events: int = 0
    """Events some connection was still waiting for when ``--event-timeout`` ran out."""
    pre_fanout_ms: list[float] = field(default_factory=list)
    """From just before the trigger published the change to the event's ``at``."""
    fanout_ms: list[float] = field(default_factory=list)
    """From the event's ``at`` to its last delivery."""
    connect_s: float = 0.0
    problems: Counter[str] = field(default_factory=Counter)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.connected if self.connected else math.nan


# -- the client processes --------------------------------------------------------------------


class Subscriber:
    """One WebSocket: handshake and subscribe under the shared gate, then record every frame."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.frames: list[tuple[float, str]] = []
        self.error: str | None = None
        self.closed: str | None = None

    async def run(self) -> None:
        client = self.client
        try:
            async with client.gate:
                ws = await asyncio.wait_for(self._subscribe(), HANDSHAKE_TIMEOUT_S)
        except Exception as exc:
            self.error = describe(exc)
            client.attempted += 1
            client.maybe_done()
            return
        client.connected += 1
        client.attempted += 1
        client.maybe_done()
        frames = self.frames
        now = time.time
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                frames.append((now(), message.data))
                client.received += 1
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                self.closed = f"closed by the server ({message.type.name}, {message.data!r})"
                return

    async def _subscribe(self) -> aiohttp.ClientWebSocketResponse:
        ws = await self.client.session.ws_connect(
            self.client.url, headers={"X-API-Key": self.client.key}, autoping=True, heartbeat=None, compress=0
        )
        greeting = await ws.receive()
        if greeting.type is not aiohttp.WSMsgType.TEXT or b"connection_established" not in greeting.data.encode():
            raise RuntimeError(f"no greeting: {greeting.type.name} {str(greeting.data)[:80]}")
        await ws.send_str(SUBSCRIBE)
        while True:
            answer = await ws.receive()
            if answer.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"closed while subscribing: {answer.type.name} {str(answer.data)[:80]}")
            if orjson.loads(answer.data).get("type") == "subscribed":
                return ws


class Client:
    def __init__(self, url: str, key: str, count: int, concurrency: int) -> None:
        self.url = url
        self.key = key
        self.count = count
        self.gate = asyncio.Semaphore(concurrency)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=HANDSHAKE_TIMEOUT_S),
        )
        self.subscribers = [Subscriber(self) for _ in range(count)]
        self.attempted = 0
        self.connected = 0
        self.received = 0
        self.opened = asyncio.Event()

    def maybe_done(self) -> None:
        if self.attempted == self.count:
            self.opened.set()

    async def run(self) -> None:
        tasks = [asyncio.create_task(subscriber.run()) for subscriber in self.subscribers]
        if not tasks:
            self.opened.set()
        await self.opened.wait()
        gc.collect()
        gc.freeze()  # the connections are long-lived: the client's own collections must not pause it
        gc.disable()  # while measuring (it runs for seconds, and the frames it keeps are not cyclic)
        errors = Counter(s.error for s in self.subscribers if s.error is not None)
        emit({"connected": self.connected, "failed": self.count - self.connected, "errors": dict(errors)})
        reporter = asyncio.create_task(self._report_received())
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while (line := (await reader.readline()).decode().strip()) != "report":
            if not line:
                raise SystemExit(0)  # the parent went away
        reporter.cancel()
        emit({"result": self.result()})
        os._exit(0)  # without closing thousands of connections one by one

    async def _report_received(self) -> None:
        """The frames received so far, whenever the count changed: the parent fires the next
        event once every connection has the previous one."""
        reported = -1
        while True:
            if self.received != reported:
                reported = self.received
                emit({"received": reported})
            await asyncio.sleep(REPORT_EVERY_S)

    def result(self) -> dict[str, Any]:
        stamps: dict[str, float] = {}
        events: dict[str, dict[str, Any]] = {}
        latencies: list[float] = []
        per_connection: Counter[int] = Counter()
        problems: Counter[str] = Counter()
        sizes = 0
        for subscriber in self.subscribers:
            if subscriber.error is not None:
                continue
            if subscriber.closed is not None:
                problems[subscriber.closed] += 1
            seen: set[str] = set()
            for received_at, text in subscriber.frames:
                message = orjson.loads(text)
                if message.get("type") != "event":
                    problems[f"unexpected {message.get('type')!r} message"] += 1
                    continue
                data = message["data"]
                at = data["at"]
                stamp = stamps.get(at)
                if stamp is None:
                    stamp = stamps[at] = datetime.fromisoformat(at).timestamp()
                event = events.setdefault(message["id"], {"offer_id": data["offer_id"], "at": stamp, "last": 0.0})
                event["last"] = max(event["last"], received_at)
                if message["id"] in seen:
                    problems["an event received twice"] += 1
                    continue
                seen.add(message["id"])
                latencies.append(round((received_at - stamp) * 1000.0, 3))
                sizes += len(text)
            per_connection[len(seen)] += 1
        return {
            "latencies_ms": latencies,
            "per_connection": {str(k): v for k, v in per_connection.items()},
            "events": events,
            "frame_bytes": sizes // len(latencies) if latencies else 0,
            "problems": dict(problems),
        }


def emit(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.flush()


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:160]


async def client_main(port: int, count: int, concurrency: int, key: str) -> None:
    raise_fd_limit()
    client = Client(f"ws://{HOST}:{port}{SOCKET_PATH}", key, count, concurrency)
    await client.run()


def raise_fd_limit() -> int:
    """The soft limit on open files up to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


# -- the servers -------------------------------------------------------------------------------


def start(name: str, app: str, *, log: Path, env: dict[str, str]) -> Server:
    port = free_port()
    argv = [part.format(host=HOST, port=port) for part in GRANIAN] + [app]
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, port, process, log, gateway=app == GATEWAY_APP)


async def wait_ready(server: Server, session: aiohttp.ClientSession) -> dict[str, Any]:
    """Until ``GET /_bench/reprice`` says the server publishes changes (the gateway: catalogue
    seeded and the runtime live)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name}: granian exited with {server.process.returncode} before it was ready:\n"
                f"{tail(server.log)}"
            )
        with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
            state = await status(server, session)
            if state.get("live"):
                return state
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT_S:.0f} s:\n{tail(server.log)}")


async def status(server: Server, session: aiohttp.ClientSession) -> dict[str, Any]:
    url = f"http://{HOST}:{server.port}{REPRICE_PATH}"
    async with session.get(url, headers={"X-API-Key": OPERATOR_KEY}, timeout=aiohttp.ClientTimeout(total=5)) as r:
        return dict(orjson.loads(await r.read())) if r.status == 200 else {}


async def reprice(server: Server, session: aiohttp.ClientSession) -> dict[str, Any]:
    url = f"http://{HOST}:{server.port}{REPRICE_PATH}"
    async with session.post(url, headers={"X-API-Key": OPERATOR_KEY}, timeout=aiohttp.ClientTimeout(total=60)) as r:
        body = await r.read()
        if r.status != 200:
            raise RuntimeError(f"{server.name}: POST {REPRICE_PATH} answered {r.status}: {body[:300]!r}")
        return dict(orjson.loads(body))


def worker_pid(server: Server, timeout_s: float = 30.0) -> int:
    """granian serves from a worker process, a child of the one started."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = []
        for task in Path(f"/proc/{server.process.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                children += [int(pid) for pid in task.read_text().split()]
        if len(children) == 1:
            return children[0]
        if len(children) > 1:
            raise RuntimeError(f"{server.name}: granian has {len(children)} worker processes, expected 1")
        time.sleep(0.1)
    raise RuntimeError(f"{server.name}: no granian worker process found:\n{tail(server.log)}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the measurement ---------------------------------------------------------------------------


@dataclass
class ClientProcess:
    process: asyncio.subprocess.Process
    count: int
    connected: int = 0
    received: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    result: dict[str, Any] | None = None
    hello: dict[str, Any] | None = None
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = orjson.loads(line)
            if "received" in message:
                self.received = int(message["received"])
            elif "connected" in message:
                self.hello = message
                self.connected = int(message["connected"])
            elif "result" in message:
                self.result = message["result"]
            self.progress.set()
        self.progress.set()

    async def wait(self, done: Any, timeout_s: float) -> bool:
        """Until ``done(self)`` or ``timeout_s`` has passed; False if the process died."""
        deadline = time.monotonic() + timeout_s
        while not done(self):
            if self.reader is not None and self.reader.done():
                if not self.reader.cancelled() and self.reader.exception() is not None:
                    raise RuntimeError(f"reading a client process failed: {self.reader.exception()!r}")
                return False
            self.progress.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), left)
        return True


async def start_clients(port: int, subscribers: int, processes: int, concurrency: int) -> list[ClientProcess]:
    shares = [subscribers // processes + (1 if i < subscribers % processes else 0) for i in range(processes)]
    per_process = max(1, math.ceil(concurrency / processes))
    clients = []
    for share in shares:
        argv = [sys.executable, str(Path(__file__).resolve()), "--client"]
        argv += [f"--port={port}", f"--count={share}", f"--open-concurrency={per_process}"]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True, limit=READ_LIMIT
        )
        client = ClientProcess(process, share)
        client.reader = asyncio.create_task(client.read())
        clients.append(client)
    return clients


async def stop_clients(clients: list[ClientProcess]) -> None:
    for client in clients:
        if client.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                client.process.kill()
        with contextlib.suppress(ProcessLookupError):
            await client.process.wait()
        if client.reader is not None:
            client.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.reader


async def measure(
    server: Server,
    session: aiohttp.ClientSession,
    *,
    subscribers: int,
    events: int,
    interval_s: float,
    event_timeout_s: float,
    processes: int,
    concurrency: int,
) -> Run:
    run = Run(server.name, subscribers)
    await wait_ready(server, session)
    worker = worker_pid(server)
    await asyncio.sleep(SETTLE_S)
    run.rss_before_kib = rss_kib(worker)
    clients: list[ClientProcess] = []
    try:
        started = time.monotonic()
        clients = await start_clients(server.port, subscribers, processes, concurrency)
        open_timeout_s = 60.0 + subscribers * 0.02
        for client in clients:
            if not await client.wait(lambda c: c.hello is not None, open_timeout_s):
                raise RuntimeError(
                    f"{server.name}: a client process did not finish opening {client.count} connections within "
                    f"{open_timeout_s:.0f} s (exit code {client.process.returncode})"
                )
            assert client.hello is not None
            run.failures.update(client.hello["errors"])
        run.connect_s = time.monotonic() - started
        run.connected = sum(client.connected for client in clients)
        await asyncio.sleep(SETTLE_S)
        run.rss_after_kib = rss_kib(worker)
        run.server_subscribers = int((await status(server, session)).get("subscribers", -1))

        published: dict[str, float] = {}
        for number in range(1, events + 1):
            fired = time.monotonic()
            answer = await reprice(server, session)
            published[answer["offer_id"]] = answer["published_at"]
            for client in clients:
                expected = client.connected * number
                if not await client.wait(lambda c, expected=expected: c.received >= expected, event_timeout_s):
                    run.missed_events += 1
                    break
            await asyncio.sleep(max(0.05, interval_s - (time.monotonic() - fired)))

        for client in clients:
            assert client.process.stdin is not None
            client.process.stdin.write(b"report\n")
            await client.process.stdin.drain()
        for client in clients:
            if not await client.wait(lambda c: c.result is not None, 120.0):
                raise RuntimeError(
                    f"{server.name}: a client process did not report (exit code {client.process.returncode})"
                )
    finally:
        await stop_clients(clients)

    seen: dict[str, dict[str, Any]] = {}
    sizes = []
    for client in clients:
        assert client.result is not None
        result = client.result
        run.latencies_ms += result["latencies_ms"]
        run.complete += result["per_connection"].get(str(events), 0)
        run.problems.update(result["problems"])
        if result["frame_bytes"]:
            sizes.append(result["frame_bytes"])
        for event_id, event in result["events"].items():
            known = seen.setdefault(event_id, dict(event))
            known["last"] = max(known["last"], event["last"])
    run.frame_bytes = int(statistics.mean(sizes)) if sizes else 0
    if len(seen) != events:
        run.problems[f"{len(seen)} distinct events delivered, {events} fired"] += 1
    for event in seen.values():
        if event["offer_id"] in published:
            run.pre_fanout_ms.append((event["at"] - published[event["offer_id"]]) * 1000.0)
        run.fanout_ms.append((event["last"] - event["at"]) * 1000.0)
    return run


async def main(
    subscriber_counts: list[int],
    events: int,
    interval_s: float,
    event_timeout_s: float,
    processes: int,
    concurrency: int,
    offers: int,
) -> None:
    limit = raise_fd_limit()
    needed = max(subscriber_counts) + FD_MARGIN
    if limit < needed:
        raise RuntimeError(f"the open-files limit is {limit}; the server needs at least {needed} (ulimit -Hn)")
    if math.ceil(max(subscriber_counts) / processes) + FD_MARGIN > limit:
        raise RuntimeError(f"too many connections per client process for an open-files limit of {limit}")
    runs: list[Run] = []
    frame_bytes = 1000
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp_name:
        tmp = Path(tmp_name)
        now = datetime.now(UTC).isoformat()
        template = tmp / "template"
        migrate = subprocess.run(
            [str(VENV_BIN / "gpubroker"), "migrate"],
            cwd=ROOT,
            env=gateway_environment(template, offers, now, secret_key="bench-fanout", operator_key=OPERATOR_KEY),
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"gpubroker migrate failed:\n{migrate.stdout}{migrate.stderr}")
        async with aiohttp.ClientSession() as session:
            for subscribers in subscriber_counts:
                for name in (GATEWAY, BARE):
                    number = len(runs)
                    if name == GATEWAY:
                        data_dir = tmp / f"data-{number}"
                        shutil.copytree(template, data_dir)
                        env = gateway_environment(
                            data_dir, offers, now, secret_key="bench-fanout", operator_key=OPERATOR_KEY
                        )
                        app = GATEWAY_APP
                    else:
                        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_FRAME_BYTES": str(frame_bytes)}
                        app = BARE_APP
                    server = start(name, app, log=tmp / f"server-{number}.log", env=env)
                    try:
                        print(f"bench: {name}, {subscribers:,} subscribers ...", file=sys.stderr, flush=True)
                        run = await measure(
                            server,
                            session,
                            subscribers=subscribers,
                            events=events,
                            interval_s=interval_s,
                            event_timeout_s=event_timeout_s,
                            processes=processes,
                            concurrency=concurrency,
                        )
                    finally:
                        stop(server.process)
                    if name == GATEWAY and run.frame_bytes:
                        frame_bytes = run.frame_bytes
                    runs.append(run)
                    report_progress(run)
    print_table(runs, events, processes, offers)


def report_progress(run: Run) -> None:
    failures = sum(run.failures.values())
    print(
        f"bench:   {run.connected:,} connected in {run.connect_s:.1f} s ({failures} failed), "
        f"p99 {run.percentile(0.99):.1f} ms"
        + (f"; failures: {dict(run.failures.most_common(3))}" if failures else "")
        + (f"; problems: {dict(run.problems.most_common(3))}" if run.problems else ""),
        file=sys.stderr,
        flush=True,
    )


def print_table(runs: list[Run], events: int, processes: int, offers: int) -> None:
    print(
        f"WebSocket fan-out, {events} price changes per subscriber count, each delivered to every subscriber "
        f"of price_updates before the next ({offers:,} offers; granian ASGI, 1 worker, uvloop; "
        f"{processes} aiohttp client processes; {os.cpu_count()} cores)"
    )
    print()
    print(
        "| server | subscribers | connected | p50 ms | p99 ms | max ms | all events | KiB/connection "
        "| frame bytes | p99 vs bare |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    bare = {run.subscribers: run for run in runs if run.server == BARE}
    for run in runs:
        ratio = "-"
        baseline = bare.get(run.subscribers)
        if run.server == GATEWAY and baseline is not None and baseline.percentile(0.99) > 0:
            ratio = f"{run.percentile(0.99) / baseline.percentile(0.99):.2f}x"
        share = run.complete / run.subscribers if run.subscribers else 0.0
        print(
            f"| {run.server} | {run.subscribers:,} | {run.connected:,} | {run.percentile(0.50):.1f} "
            f"| {run.percentile(0.99):.1f} | {run.percentile(1.0):.1f} | {share:.1%} "
            f"| {run.kib_per_connection:.1f} | {run.frame_bytes:,} | {ratio} |"
        )
    print()
    for run in runs:
        notes = []
        if run.server == GATEWAY and run.pre_fanout_ms:
            notes.append(
                f"trigger to the event's 'at' (bus, ingest, catalogue) median "
                f"{statistics.median(run.pre_fanout_ms):.1f} ms (not in the latencies)"
            )
        if run.fanout_ms:
            notes.append(
                f"'at' to the last delivery median {statistics.median(run.fanout_ms):.1f} ms, "
                f"slowest event {max(run.fanout_ms):.1f} ms"
            )
        if run.server == GATEWAY and run.server_subscribers != run.connected:
            notes.append(f"the hub holds {run.server_subscribers:,} subscriptions for {run.connected:,} connections")
        notes.append(f"connections opened in {run.connect_s:.1f} s")
        notes.append(f"worker RSS {run.rss_before_kib / 1024:,.0f} -> {run.rss_after_kib / 1024:,.0f} MiB")
        if run.failures:
            notes.append(f"connection failures: {dict(run.failures.most_common(3))}")
        if run.missed_events:
            notes.append(f"{run.missed_events} event(s) not delivered to every connection in time")
        if run.problems:
            notes.append(f"problems: {dict(run.problems.most_common(3))}")
        print(f"- {run.server}, {run.subscribers:,}: " + "; ".join(notes))
    print()
    goal = [run for run in runs if run.server == GATEWAY and run.subscribers == GOAL_SUBSCRIBERS]
    if not goal:
        print(f"goal (p99 <= {P99_GOAL_MS:.0f} ms at {GOAL_SUBSCRIBERS:,} subscribers): not measured")
        return
    run = goal[0]
    met = run.percentile(0.99) <= P99_GOAL_MS and run.complete == run.subscribers and run.connected == run.subscribers
    print(
        f"goal (SRS NFR-P7, p99 <= {P99_GOAL_MS:.0f} ms at {GOAL_SUBSCRIBERS:,} subscribers, every event to every "
        f"subscriber): {'met' if met else 'MISSED'} (p99 {run.percentile(0.99):.1f} ms, "
        f"{run.complete:,} of {run.subscribers:,} got every event)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="1000,5000,10000", help="comma-separated subscriber counts")
    parser.add_argument("--events", type=int, default=20, help="price changes per subscriber count")
    parser.add_argument("--interval", type=float, default=0.4, help="at least this many seconds between events")
    parser.add_argument("--event-timeout", type=float, default=10.0, help="seconds to wait for every delivery")
    parser.add_argument("--clients", type=int, default=max(2, min(4, os.cpu_count() or 2)), help="client processes")
    parser.add_argument("--open-concurrency", type=int, default=128, help="handshakes in flight at once, in all")
    parser.add_argument("--offers", type=int, default=500)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(client_main(args.port, args.count, args.open_concurrency, OPERATOR_KEY))
        os._exit(0)  # without closing thousands of connections one by one
    for stop_signal in (signal.SIGINT, signal.SIGTERM):  # KeyboardInterrupt: the finally blocks stop the servers
        signal.signal(stop_signal, signal.default_int_handler)
    try:
        counts = [int(part) for part in args.subscribers.split(",") if part.strip()]
        asyncio.run(
            main(
                counts,
                args.events,
                args.interval,
                args.event_timeout,
                args.clients,
                args.open_concurrency,
                args.offers,
            )
        )
    except RuntimeError as exc:
        sys.exit(f"bench: {exc}")
    except KeyboardInterrupt:
        sys.exit("bench: interrupted; the servers and clients are stopped")
