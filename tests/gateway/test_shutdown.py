"""SIGTERM under load (``gpubroker serve``): the instance drains before it stops. Requests on the
connections clients hold keep being answered, each now with ``Connection: close`` so no
connection is reused, ``/ready`` says 503, and a client told to close goes elsewhere (as a load
balancer would): no request is cut, and the process stops once the drain is over."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp

BIN = Path(sys.executable).parent
CLIENTS = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


async def load_through_a_sigterm(port: int, process: subprocess.Popen[bytes]) -> tuple[Counter[str], Counter[str]]:
    answered: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=CLIENTS)  # keep-alive connections, reused request after request
    async with aiohttp.ClientSession(connector=connector, headers={"X-API-Key": "operator"}) as session:

        async def client() -> None:
            until = time.monotonic() + 5
            while time.monotonic() < until:
                try:
                    async with session.post(f"http://127.0.0.1:{port}/api/v2/providers/query", json={"limit": 1}) as r:
                        await r.read()
                        answered[str(r.status)] += 1
                        if r.headers.get("Connection") == "close":
                            answered["told to close"] += 1
                            return  # this instance is going away: a client goes elsewhere
                except aiohttp.ClientError as exc:
                    failed[type(exc).__name__] += 1

        clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        await asyncio.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession() as probe, probe.get(f"http://127.0.0.1:{port}/ready") as ready:
            draining = (ready.status, ready.headers.get("Connection"))  # its own connection, not the clients' pool
        await asyncio.gather(*clients)
    assert draining == (503, "close"), draining
    return answered, failed


def test_requests_in_flight_at_sigterm_are_answered_and_none_is_cut(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    env |= {"GPUBROKER_DATA_DIR": str(tmp_path), "GPUBROKER_PLUGINS": "[]", "GPUBROKER_ADMIN_API_KEY": "operator"}
    env |= {"GPUBROKER_SHUTDOWN_DRAIN_S": "2"}
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    port = free_port()
    process = subprocess.Popen(
        [BIN / "gpubroker", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready(port):
            assert time.monotonic() < deadline, "the gateway did not become ready"
            time.sleep(0.2)
        answered, failed = asyncio.run(load_through_a_sigterm(port, process))
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert answered["200"] > 100 and set(answered) == {"200", "told to close"}, answered
    assert answered["told to close"] == CLIENTS, "every client was told, on its own connection"
    assert not failed, f"requests cut or refused: {failed}"


async def stream_through_a_sigterm(port: int, process: subprocess.Popen[bytes]) -> tuple[float, bytes]:
    """Seconds from SIGTERM until an open event stream ends, and what it carried."""
    async with (
        aiohttp.ClientSession(headers={"X-API-Key": "operator"}) as session,
        session.get(f"http://127.0.0.1:{port}/api/v2/providers/stream") as stream,
    ):
        assert stream.status == 200
        first = await stream.content.readline()
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        rest = await asyncio.wait_for(stream.content.read(), 20)
        return time.monotonic() - signalled, first + rest


def test_an_open_event_stream_ends_when_the_instance_drains_and_does_not_keep_it_running(tmp_path: Path) -> None:
    """Its client resumes on another instance at once; the server stops after the drain as if
    no stream had been open (before, it waited for the stream to end, which it never does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    env |= {"GPUBROKER_DATA_DIR": str(tmp_path), "GPUBROKER_PLUGINS": "[]", "GPUBROKER_ADMIN_API_KEY": "operator"}
    env |= {"GPUBROKER_SHUTDOWN_DRAIN_S": "2"}
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    port = free_port()
    process = subprocess.Popen(
        [BIN / "gpubroker", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not ready(port):
            assert time.monotonic() < deadline, "the gateway did not become ready"
            time.sleep(0.2)
        ended_after, carried = asyncio.run(stream_through_a_sigterm(port, process))
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert carried.startswith(b"retry: ")
    assert ended_after < 2, f"the stream ended {ended_after:.1f}s after SIGTERM, not as the drain began"
